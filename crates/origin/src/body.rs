//! The bytes of response bodies.

/// The body repeats the lower-case alphabet; a block is a whole number of
/// alphabets so that consecutive blocks continue the pattern.
pub(crate) const PATTERN_BLOCK: usize = 26 * 1024;

/// A block of the pattern plus one alphabet, so that a block can start at
/// any offset of the alphabet.
static PATTERN: [u8; PATTERN_BLOCK + 26] = pattern();

const fn pattern() -> [u8; PATTERN_BLOCK + 26] {
    let mut bytes = [0u8; PATTERN_BLOCK + 26];
    let mut i = 0;
    while i < bytes.len() {
        bytes[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    bytes
}

/// The `len` body bytes starting at body offset `offset`; `len` is at most
/// [`PATTERN_BLOCK`].
pub(crate) fn pattern_slice(offset: u64, len: usize) -> &'static [u8] {
    let start = (offset % 26) as usize;
    &PATTERN[start..start + len.min(PATTERN_BLOCK)]
}

/// The body of a response of `len` bytes: `abc…xyzabc…`.
///
/// Every response body the origin writes is a prefix of this pattern (a
/// streamed body continues it across pieces), so a client can check that
/// it received exactly the right bytes:
///
/// ```
/// assert_eq!(freshpool_origin::body_pattern(28), b"abcdefghijklmnopqrstuvwxyzab");
/// ```
pub fn body_pattern(len: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(len);
    while body.len() < len {
        let take = (len - body.len()).min(PATTERN_BLOCK);
        body.extend_from_slice(pattern_slice(body.len() as u64, take));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_continue_the_pattern() {
        let whole = body_pattern(PATTERN_BLOCK * 2 + 7);
        let mut pieces = Vec::new();
        let mut pos = 0u64;
        for len in [3, 30, PATTERN_BLOCK, PATTERN_BLOCK - 33, 5, 2] {
            pieces.extend_from_slice(pattern_slice(pos, len));
            pos += len as u64;
        }
        assert_eq!(pieces, whole);
        assert!(
            whole
                .iter()
                .enumerate()
                .all(|(i, &b)| b == b'a' + (i % 26) as u8)
        );
    }
}
