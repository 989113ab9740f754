//! A JSON Schema from arbitrary bytes converted to a grammar (`chord_json_schema_to_gbnf`), in
//! strict and lenient mode; the grammar it gives must compile (`chord_grammar_from_json_schema`),
//! except for one known limit shared with llama.cpp: a pattern that repeats what can match
//! nothing (`(a?)*`, `(a)?+`) converts to a left-recursive grammar, refused with that error.
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
                if e.message().contains("is left-recursive") && schema.contains("pattern") {
                    continue;
                }
                panic!("the grammar of a converted schema does not compile: {e}\n{gbnf}");
            }
        }
    }
});
