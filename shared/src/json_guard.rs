//! A cheap look at a JSON body before it is parsed: how deeply it nests.
//!
//! serde_json stops at 128 levels on its own (so nothing overflows the stack), but answers a
//! deep body with a syntax error at some offset; checking first lets the API say what the
//! limit is, and keeps bodies our requests never need (a recipient list nests 4 levels) from
//! reaching the parser at all.

/// The deepest nesting of arrays and objects in `body`, stopping early once it passes `max`
/// (so a hostile body costs at most one pass). Brackets inside strings do not count. The
/// bytes need not be valid JSON: the parser judges that afterwards.
pub fn nesting_depth(body: &[u8], max: usize) -> usize {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > deepest {
                    deepest = depth;
                    if deepest > max {
                        return deepest;
                    }
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_arrays_and_objects_not_strings() {
        assert_eq!(nesting_depth(b"", 10), 0);
        assert_eq!(nesting_depth(b"42", 10), 0);
        assert_eq!(nesting_depth(br#"{"a": [1, {"b": []}]}"#, 10), 4);
        assert_eq!(nesting_depth(br#"{"a": "[[[[{{{{\"[[["}"#, 10), 1);
        assert_eq!(nesting_depth(b"]]]][[", 10), 2);
        // Stops as soon as the limit is passed.
        assert_eq!(nesting_depth(&[b'['; 1_000_000], 32), 33);
    }
}
