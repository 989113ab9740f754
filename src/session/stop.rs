//! Stop strings over streamed text: text is held back while it could still be the start of a stop
//! string, and everything from the first match on is dropped.

/// Matches stop strings against text arriving in pieces.
pub struct StopMatcher {
    stops: Vec<String>,
    held: String,
}

impl StopMatcher {
    /// A matcher for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        StopMatcher {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Adds `text`; returns the text that is safe to emit, and whether a stop string matched
    /// (then the returned text ends just before it).
    pub fn push(&mut self, text: &str) -> (String, bool) {
        self.held.push_str(text);
        if let Some(pos) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            let out = self.held[..pos].to_string();
            self.held.clear();
            return (out, true);
        }
        // Hold back the longest tail that is a proper prefix of some stop string.
        let mut keep = 0;
        for s in &self.stops {
            for (i, _) in self.held.char_indices() {
                let tail = &self.held[i..];
                if tail.len() < s.len() && s.starts_with(tail) {
                    keep = keep.max(tail.len());
                    break;
                }
            }
        }
        let cut = self.held.len() - keep;
        let out = self.held[..cut].to_string();
        self.held.drain(..cut);
        (out, false)
    }

    /// Ends the stream: returns what was held back plus `tail`.
    pub fn finish(&mut self, tail: &str) -> String {
        let (mut out, hit) = self.push(tail);
        if !hit {
            out.push_str(&std::mem::take(&mut self.held));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_back_prefix_and_cuts_at_match() {
        let mut m = StopMatcher::new(&["</s>".to_string(), "\n\n".to_string()]);
        assert_eq!(m.push("Hello <"), ("Hello ".to_string(), false));
        assert_eq!(m.push("/"), (String::new(), false));
        assert_eq!(m.push("x"), ("</x".to_string(), false));
        assert_eq!(m.push("done\n"), ("done".to_string(), false));
        assert_eq!(m.push("\nmore"), (String::new(), true));
    }

    #[test]
    fn finish_flushes_held_text() {
        let mut m = StopMatcher::new(&["STOP".to_string()]);
        assert_eq!(m.push("abcST"), ("abc".to_string(), false));
        assert_eq!(m.finish(""), "ST");
        let mut none = StopMatcher::new(&[]);
        assert_eq!(none.push("x"), ("x".to_string(), false));
    }
}
