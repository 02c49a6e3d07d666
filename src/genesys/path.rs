//! URL path segments: how a table id or a row key goes into a request path.

/// Percent-encodes one path segment (a row key may hold `/`, `%`, `#`, spaces, anything).
pub fn encode_segment(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'_')
        .remove(b'.')
        .remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_fully_encoded() {
        assert_eq!(encode_segment("a b/c%d#e?ü"), "a%20b%2Fc%25d%23e%3F%C3%BC");
        assert_eq!(encode_segment("Sales-EU_1.x~"), "Sales-EU_1.x~");
    }
}
