//! Fast CSV lines: fields joined by commas, quoted only when they must be (RFC 4180).

pub(crate) struct Line<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Line<'a> {
    pub fn new(buf: &'a mut Vec<u8>) -> Self {
        Line { buf, first: true }
    }

    fn sep(&mut self) {
        if !self.first {
            self.buf.push(b',');
        }
        self.first = false;
    }

    pub fn field(&mut self, s: &str) {
        self.sep();
        if s.contains([',', '"', '\n', '\r']) {
            self.buf.push(b'"');
            self.buf
                .extend_from_slice(s.replace('"', "\"\"").as_bytes());
            self.buf.push(b'"');
        } else {
            self.buf.extend_from_slice(s.as_bytes());
        }
    }

    pub fn int(&mut self, v: i64) {
        self.sep();
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    }

    /// Minor units as a decimal amount with two places.
    pub fn money(&mut self, cents: i64) {
        self.sep();
        if cents < 0 {
            self.buf.push(b'-');
        }
        let c = cents.unsigned_abs();
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(c / 100).as_bytes());
        self.buf.push(b'.');
        let frac = c % 100;
        self.buf.push(b'0' + (frac / 10) as u8);
        self.buf.push(b'0' + (frac % 10) as u8);
    }

    /// Starts a field with unquoted text (a date), to be completed by [`Line::raw_fmt_time`].
    pub fn raw(&mut self, s: &str) {
        self.sep();
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// Appends `THH:MM:SSZ` for `secs` seconds into the day.
    pub fn raw_fmt_time(&mut self, secs: u32) {
        let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
        for (sep, v) in [(b'T', h), (b':', m), (b':', s)] {
            self.buf.push(sep);
            self.buf.push(b'0' + (v / 10) as u8);
            self.buf.push(b'0' + (v % 10) as u8);
        }
        self.buf.push(b'Z');
    }

    pub fn end(self) {
        self.buf.push(b'\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        let mut buf = Vec::new();
        let mut l = Line::new(&mut buf);
        l.field("plain");
        l.field("a, b");
        l.field("say \"hi\"");
        l.money(1205);
        l.money(-7);
        l.int(42);
        l.raw("2024-01-02");
        l.raw_fmt_time(3661);
        l.end();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "plain,\"a, b\",\"say \"\"hi\"\"\",12.05,-0.07,42,2024-01-02T01:01:01Z\n"
        );
    }
}
