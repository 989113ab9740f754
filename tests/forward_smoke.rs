mod common;
use chord::backend::Cpu;
use chord::gguf::GgufFile;
use chord::model::*;
use std::sync::Arc;

#[test]
fn prints_top_tokens() {
    let f = GgufFile::open(common::default_model()).unwrap();
    let cfg = Config::from_gguf(&f).unwrap();
    let weights = Weights::from_gguf(&f, &cfg).unwrap();
    let core = Arc::new(ModelCore { cfg, weights });
    let mut tr = Transformer::<Cpu>::new(core.clone(), 64, Default::default());
    let toks = [19556u32, 905, 28, 942, 1345];
    let all = tr.eval(&toks[..3], WantLogits::All, &|| false).unwrap();
    let last = tr.eval(&toks[3..], WantLogits::All, &|| false).unwrap();
    let v = core.cfg.n_vocab;
    for rows in [&all, &last] {
        for r in rows.chunks(v) {
            let am = chord::session::sampler::argmax(r);
            println!("argmax {am} logit {} first {:?}", r[am as usize], &r[..3]);
        }
    }
}
