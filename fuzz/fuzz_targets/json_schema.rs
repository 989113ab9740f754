//! A JSON Schema from arbitrary bytes converted to a grammar (`chord_json_schema_to_gbnf`), in
//! strict and lenient mode; the grammar it gives must compile (`chord_grammar_from_json_schema`),
//! except where the grammar meets a limit that llama.cpp's has too: a pattern that repeats what
//! can match nothing (`(a?)*`, `(a)?+`) or a `$ref` cycle that consumes nothing (`a` defined as
//! `{"$ref": "#/.../a"}`) converts to a left-recursive grammar, and a count above
//! 2,000 (`{3333333}`, `minLength: 5000`, nested repetitions multiplying past it) is refused by the
//! grammar parser's bound on repetitions. Both are errors that name the problem.
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
                let m = e.message();
                let self_made = schema.contains("pattern") || schema.contains("$ref");
                if (m.contains("is left-recursive") && self_made) || m.contains("more than 2000") {
                    continue;
                }
                panic!("the grammar of a converted schema does not compile: {e}\n{gbnf}");
            }
        }
    }
});
