//! The GGUF reader on the real default model.
mod common;

use chord::gguf::GgufFile;

#[test]
fn reads_smollm2_index() {
    let f = GgufFile::open(common::default_model()).unwrap();
    assert_eq!(f.version(), 3);
    assert_eq!(f.get_str("general.architecture").unwrap(), "llama");
    assert_eq!(f.get_u64("llama.block_count").unwrap(), 30);
    assert_eq!(f.tensors().len(), 272);
    let emb = f.tensor("token_embd.weight").unwrap();
    assert_eq!(emb.dims, vec![576, 49152]);
    for t in f.tensors() {
        assert!(t.offset + t.size <= f.file_size());
    }
}
