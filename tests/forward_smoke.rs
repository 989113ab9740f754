mod common;
use chord::backend::Cpu;
use chord::gguf::GgufFile;
use chord::model::*;
use std::sync::Arc;

#[test]
fn batch_equals_incremental() {
    let f = GgufFile::open(common::default_model()).unwrap();
    let cfg = Config::from_gguf(&f).unwrap();
    let weights = Weights::from_gguf(&f, &cfg).unwrap();
    let core = Arc::new(ModelCore { cfg, weights });
    let toks = [19556u32, 905, 28, 451, 314, 260, 1345, 2000];
    let mut a = Transformer::<Cpu>::new(core.clone(), 64, Default::default());
    let all = a.eval(&toks, WantLogits::All, &|| false).unwrap();
    let mut b = Transformer::<Cpu>::new(core.clone(), 64, Default::default());
    let v = core.cfg.n_vocab;
    for (i, t) in toks.iter().enumerate() {
        let one = b.eval(&[*t], WantLogits::Last, &|| false).unwrap();
        let d = one
            .iter()
            .zip(&all[i * v..(i + 1) * v])
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        println!("pos {i}: max diff batch vs incremental {d}");
    }
}
