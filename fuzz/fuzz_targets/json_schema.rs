//! A JSON Schema from arbitrary bytes converted to a grammar (`chord_json_schema_to_gbnf`), in
//! strict and lenient mode; the grammar it gives must compile (`chord_grammar_from_json_schema`).
#![no_main]

use chord::grammar::{json_schema_to_gbnf, Grammar};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(schema) = std::str::from_utf8(data) else {
        return;
    };
    for strict in [false, true] {
        if let Ok(gbnf) = json_schema_to_gbnf(schema, strict) {
            if let Err(e) = Grammar::new(&gbnf, "root", None) {
                panic!("the grammar of a converted schema does not compile: {e}\n{gbnf}");
            }
        }
    }
});
