//! Parser errors with their positions, and the token checks of [`GrammarState`] (llama.cpp's own
//! cases are in tests/grammar_llamacpp.rs).

use super::*;
use std::sync::Arc;

fn grammar(text: &str) -> Arc<Grammar> {
    Arc::new(Grammar::new(text, "root", None).unwrap_or_else(|e| panic!("{text}: {e}")))
}

#[test]
fn errors_give_line_and_column() {
    let cases = [
        (
            "root ::= \"a\"\nfoo ::= [b",
            "line 2, column 11: unexpected end of input",
        ),
        (
            "root ::= \"a\" | bar",
            "line 1, column 16: undefined rule 'bar'",
        ),
        ("root ::= \"\\q\"", "line 1, column 11: unknown escape"),
        ("root ::= (\"a\"", "line 1, column 14: expecting ')'"),
        ("root := \"a\"", "line 1, column 6: expecting ::="),
        (
            "root ::= \"a\"{3,1}",
            "line 1, column 13: the maximum repetition count is below the minimum",
        ),
        ("root ::= *", "line 1, column 10: expecting an item before"),
        (
            "root ::= \"a\" )",
            "line 1, column 14: expecting newline or end",
        ),
        (
            "\n\n  root ::= x\nx ::= x \"a\"",
            "line 4, column 1: rule 'x' is left-recursive",
        ),
        // Found by fuzzing (fuzz/fuzz_targets/grammar.rs): left recursion through a rule that
        // matches nothing only through another rule (`ws`'s repetition); it used to expand until
        // memory ran out.
        (
            "root ::= (expr \"=\" ws term \"\\n\")+\nexpr ::= term ([-+*/] term)*\nterm ::= ident | ws expr \")\" ws\nident ::= [a-z]+ ws\nws ::= [ \\t\\n]*",
            "is left-recursive",
        ),
        (
            "root ::= <hello>",
            "line 1, column 10: no vocabulary to resolve token <hello>",
        ),
        (
            "root ::= \"é\" [",
            "line 1, column 15: unexpected end of input",
        ),
        ("", "the grammar has no rules"),
        ("start ::= \"a\"", "no rule named 'root'"),
    ];
    for (text, want) in cases {
        let e = Grammar::new(text, "root", None).unwrap_err();
        assert_eq!(e.code(), ErrorCode::Grammar);
        assert!(e.message().contains(want), "{text:?}: {e}");
    }
}

#[test]
fn tokens_split_inside_a_character_are_checked_by_their_first_bytes() {
    // "é" is C3 A9, "€" is E2 82 AC.
    let g = grammar("root ::= \"é\" [a-z]");
    let mut st = GrammarState::new(g.clone());
    assert!(st.allows(1, &[0xC3]), "the first byte of é");
    assert!(
        !st.allows(1, &[0xE2]),
        "the first byte of a three-byte character"
    );
    assert!(!st.allows(1, b"a"));
    st.accept(1, &[0xC3]).unwrap();
    assert!(st.allows(2, &[0xA9]), "the rest of é");
    assert!(st.allows(2, &[0xA9, b'x']));
    assert!(!st.allows(2, &[0xA9, b'x', b'y']), "one letter only");
    assert!(!st.allows(2, b"x"), "not a continuation byte");
    st.accept(2, &[0xA9]).unwrap();
    assert!(!st.can_end());
    st.accept(3, b"q").unwrap();
    assert!(st.can_end() && st.is_done());
    assert!(!st.allows(4, b"q"));
}

#[test]
fn negated_classes_and_any_take_partial_characters() {
    let g = grammar("root ::= [^a] .");
    let st = GrammarState::new(g);
    assert!(st.clone().allows(1, &[0xE2, 0x82]));
    assert!(!st.clone().allows(1, b"a"));
    assert!(st.clone().allows(1, "€x".as_bytes()));
    assert!(!st.clone().allows(1, "€xy".as_bytes()));
    assert!(
        !st.clone().allows(1, &[0x80]),
        "a stray continuation byte is invalid"
    );
    assert!(!st.clone().allows(1, b""), "an empty piece never");
}

#[test]
fn token_elements_match_by_id() {
    let g = grammar("root ::= <[5]> (!<[6]>)* <[6]>");
    let mut st = GrammarState::new(g);
    assert!(st.allows(5, b"<s>"));
    assert!(!st.allows(4, b"<s>"));
    st.accept(5, b"anything").unwrap();
    assert!(st.allows(7, b"hello") && st.allows(6, b"x"));
    st.accept(7, b"hello").unwrap();
    st.accept(6, b"x").unwrap();
    assert!(st.is_done());
    assert!(st.clone().accept(6, b"x").is_err());
}

#[test]
fn a_refused_token_leaves_the_state_unchanged() {
    let g = grammar("root ::= \"ab\" | \"ac\"");
    let mut st = GrammarState::new(g);
    st.accept(1, b"a").unwrap();
    let e = st.accept(2, b"x").unwrap_err();
    assert_eq!(e.code(), ErrorCode::Grammar);
    st.accept(3, b"c").unwrap();
    assert!(st.is_done());
}

#[test]
fn ambiguity_is_bounded() {
    // Each "a" may end any of 13 nested optional groups: the stacks multiply.
    let mut text = String::from("root ::= x*\nx ::= ");
    for _ in 0..13 {
        text.push_str("(\"a\" | \"a\" ");
    }
    text.push_str(&")".repeat(13));
    match Grammar::new(&text, "root", None) {
        Ok(g) => {
            let mut st = GrammarState::new(Arc::new(g));
            for _ in 0..64 {
                if st.accept(1, b"a").is_err() {
                    break;
                }
            }
        }
        Err(e) => assert_eq!(e.code(), ErrorCode::Grammar),
    }
}

/// The table-driven check equals checking stack by stack, and the trie lists exactly those tokens, for every token of a vocabulary of
/// ASCII, multi-byte characters, their pieces and invalid bytes, along random walks through a
/// JSON grammar (strings, numbers, nesting) and a grammar with token elements.
#[test]
fn the_transition_table_allows_what_accepting_allows() {
    let mut vocab: Vec<Vec<u8>> = Vec::new();
    for c in "{}[]\":,. -+0123456789eEtrufalsn\\xyzé€😀\n\t".chars() {
        vocab.push(c.to_string().into_bytes());
    }
    for w in [
        "{\"", "\":", "\",", "\"}", "true", "false", "null", "12", "3.5", "-7", "e+", "ab", " \"",
        "é€", "\\n", "\\u00", "\"\"", "[]", "{}",
    ] {
        vocab.push(w.as_bytes().to_vec());
    }
    vocab.extend([
        vec![0xC3],
        vec![0xA9],
        vec![0xE2, 0x82],
        vec![0xAC],
        vec![0xF0, 0x9F],
        vec![0x98, 0x80],
        vec![0x80],
        vec![0xFF],
    ]);
    let text = crate::grammar::json_schema_to_gbnf("{}", true).unwrap();
    let grammars = [
        Arc::new(Grammar::new(&text, "root", None).unwrap()),
        grammar("root ::= <[3]> ([a-z]+ | !<[4]>)* <[4]> \"é\"?"),
    ];
    let mut seed = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let trie = TokenTrie::new(vocab.len() as u32, |t| vocab[t as usize].clone(), |_| false);
    for g in grammars {
        for walk in 0..30 {
            let mut st = GrammarState::new(g.clone());
            for step in 0..40 {
                let allowed: Vec<u32> = (0..vocab.len() as u32)
                    .filter(|&t| {
                        let a = st.allows(t, &vocab[t as usize]);
                        let b = st.allows_by_accepting(t, &vocab[t as usize]);
                        assert_eq!(
                            a, b,
                            "walk {walk} step {step} token {:?}",
                            vocab[t as usize]
                        );
                        a
                    })
                    .collect();
                let mut by_trie = Vec::new();
                st.allowed_tokens(&trie, &|t| &vocab[t as usize], &mut by_trie);
                by_trie.sort_unstable();
                assert_eq!(
                    by_trie, allowed,
                    "walk {walk} step {step}: the trie's tokens"
                );
                if allowed.is_empty() {
                    break;
                }
                let t = allowed[(next() % allowed.len() as u64) as usize];
                st.accept(t, &vocab[t as usize]).unwrap();
            }
        }
    }
}

/// Hostile nesting is an error, not a stack overflow: groups in a grammar, schemas in a schema,
/// chains of `$ref`s, long property names.
#[test]
fn deep_nesting_is_refused() {
    let deep = format!(
        "root ::= {}\"a\"{}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let e = Grammar::new(&deep, "root", None).unwrap_err();
    assert!(e.message().contains("nested more than"), "{e}");
    let ok = format!("root ::= {}\"a\"{}", "(".repeat(256), ")".repeat(256));
    Grammar::new(&ok, "root", None).unwrap();

    let mut refs = String::from(r##"{"$ref": "#/$defs/d0", "$defs": {"##);
    for i in 0..5000 {
        refs.push_str(&format!(r##""d{i}": {{"$ref": "#/$defs/d{}"}},"##, i + 1));
    }
    refs.push_str(r#""d5000": {"type": "integer"}}}"#);
    for strict in [true, false] {
        let e = json_schema_to_gbnf(&refs, strict).unwrap_err();
        assert!(e.message().contains("more than 128 deep"), "{e}");
    }
    let name = "x".repeat(10_000);
    let e = json_schema_to_gbnf(
        &format!(r#"{{"type": "object", "properties": {{"{name}": {{}}}}, "additionalProperties": true}}"#),
        false,
    )
    .unwrap_err();
    assert!(e.message().contains("longer than 256"), "{e}");
}

/// Found by fuzzing (fuzz/fuzz_targets/json_schema.rs): a maximum count below the minimum gave a
/// grammar with the repetition `{6,5}`, which then failed to compile with a message about the
/// generated text; it is the schema's error now, in both modes.
#[test]
fn schema_bounds_that_match_nothing_are_schema_errors() {
    for (schema, want) in [
        (
            r#"{"items": {"type": "integer"}, "minItems": 6, "maxItems": 5}"#,
            "minItems (6) is greater than maxItems (5)",
        ),
        (
            r#"{"type": "string", "minLength": 3, "maxLength": 2}"#,
            "minLength (3) is greater than maxLength (2)",
        ),
        (
            r#"{"type": "string", "pattern": "^A{6,5}$"}"#,
            "the repetition {6,5} has its maximum below its minimum",
        ),
        (
            r#"{"type": "string", "pattern": "^[0-9]{-3-}$"}"#,
            "the repetition {-3-} has a negative count",
        ),
        (r#"{"pattern": "^A|B|C|?$"}"#, "nothing to repeat"),
        (r#"{"pattern": "^A|{2}$"}"#, "nothing to repeat"),
    ] {
        for strict in [true, false] {
            let e = json_schema_to_gbnf(schema, strict).unwrap_err();
            assert_eq!(e.code(), ErrorCode::Grammar);
            assert!(e.message().contains(want), "{schema}: {e}");
        }
    }
    // An empty class: strict mode refuses it, lenient mode loosens it to any string (with a
    // warning), as for every unsupported pattern.
    let empty = r#"{"type": "string", "pattern": "^[]{5}$"}"#;
    let e = json_schema_to_gbnf(empty, true).unwrap_err();
    assert!(e.message().contains("an empty character class"), "{e}");
    let g = json_schema_to_gbnf(empty, false).unwrap();
    Grammar::new(&g, "root", None).unwrap();
    // An escaped bar is a character, and may be repeated.
    let g = json_schema_to_gbnf(r#"{"pattern": "^a\\|?$"}"#, false).unwrap();
    assert!(g.contains(r#""|"?"#) || g.contains(r#"|"?"#), "{g}");
}

/// Found by fuzzing (fuzz/fuzz_targets/grammar.rs): 89 nested repetitions of a class. Every
/// level doubles the stacks, and each stack of a step had its own budget of expansions, so one
/// character cost minutes; the budget is the step's now, and the step ends in an error at once.
#[test]
fn nested_repetitions_end_in_an_error_quickly() {
    let g = format!(
        "root ::= item+\nitem ::= \"- \" [^\\r\\n]{}\"\\n\"",
        "+".repeat(89)
    );
    let g = Arc::new(Grammar::new(&g, "root", None).unwrap());
    let mut st = GrammarState::new(g);
    let mut refused = false;
    for (i, b) in b"- owo".iter().enumerate() {
        if st.accept(i as u32, &[*b]).is_err() {
            refused = true;
            break;
        }
    }
    assert!(refused, "the nested repetitions were accepted");
}

/// Found by fuzzing (fuzz/fuzz_targets/json_schema.rs): with additional properties allowed, the
/// keys other than the named ones are a trie of character classes, and a name with `]` gave
/// `[]]`, which does not parse (llama.cpp writes the same grammar).
#[test]
fn property_names_with_class_characters_convert_to_grammars_that_compile() {
    for name in ["a]b", "x\\\\y", "-", "^q", "[", "tab\\there"] {
        let schema = format!(
            r#"{{"type": "object", "properties": {{"{name}": {{"type": "integer"}}, "b": {{"type": "integer"}}}}, "additionalProperties": true}}"#
        );
        let gbnf = json_schema_to_gbnf(&schema, false).unwrap();
        Grammar::new(&gbnf, "root", None).unwrap_or_else(|e| panic!("{name}: {e}\n{gbnf}"));
    }
}

/// Found by fuzzing (fuzz/fuzz_targets/json_schema.rs, CI of stop 29): an item repeated zero
/// times is empty text, and repeating that again (`[0-9]{0}{3,5}`) defined an empty rule, which
/// does not parse. What matches only the empty string stays empty under any repetition.
#[test]
fn repeating_an_empty_repetition_converts_to_a_grammar_that_compiles() {
    for pattern in [
        r"^(\([5-9]{1,3}\))?[0-9]{0}{3,5}nd...$",
        "^a{0}*$",
        "^[ab]{0}+x$",
        "^(b{0})?{2}$",
        "^a{0}$",
        "^(){2}$",
        "^(a|){3}$",
    ] {
        let schema = format!(
            r#"{{"type": "string", "pattern": "{}"}}"#,
            pattern.replace('\\', "\\\\")
        );
        for strict in [true, false] {
            let gbnf =
                json_schema_to_gbnf(&schema, strict).unwrap_or_else(|e| panic!("{pattern}: {e}"));
            let g = Grammar::new(&gbnf, "root", None)
                .unwrap_or_else(|e| panic!("{pattern}: {e}\n{gbnf}"));
            drop(g);
        }
    }
    // The empty repetition still matches what it should: `x` then the closing quote.
    let gbnf =
        json_schema_to_gbnf(r#"{"type": "string", "pattern": "^[ab]{0}+x$"}"#, true).unwrap();
    let mut st = GrammarState::new(Arc::new(Grammar::new(&gbnf, "root", None).unwrap()));
    for (i, b) in b"\"x\"".iter().enumerate() {
        st.accept(i as u32, &[*b])
            .unwrap_or_else(|e| panic!("{gbnf}: {e}"));
    }
}
