//! The Query API's XML answers, shaped as AWS writes them (reference
//! sns.md §11): `<XResponse xmlns=…><XResult>…</XResult><ResponseMetadata>`
//! and `<ErrorResponse>`. Every value goes through `escape`.

/// SNS's XML namespace.
pub const NS: &str = "http://sns.amazonaws.com/doc/2010-03-31/";

/// `s` as XML character data or attribute text: the five special
/// characters escaped, carriage returns kept as `&#13;`, and characters
/// XML 1.0 cannot carry at all replaced by U+FFFD, so the answer always parses.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\t' | '\n' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Builds the inside of an `<XResult>`.
#[derive(Debug, Default)]
pub struct Body(String);

impl Body {
    pub fn new() -> Body {
        Body::default()
    }

    /// `<name>value</name>`, the value escaped.
    pub fn field(&mut self, name: &str, value: &str) -> &mut Body {
        self.0.push_str(&format!("<{name}>{}</{name}>", escape(value)));
        self
    }

    /// `<name>` … `</name>` around what `inner` writes.
    pub fn group(&mut self, name: &str, inner: impl FnOnce(&mut Body)) -> &mut Body {
        self.0.push_str(&format!("<{name}>"));
        inner(self);
        self.0.push_str(&format!("</{name}>"));
        self
    }

    /// `<Attributes><entry><key>…</key><value>…</value></entry>…</Attributes>`.
    pub fn map<'a>(&mut self, name: &str, entries: impl IntoIterator<Item = (&'a str, &'a str)>) -> &mut Body {
        self.group(name, |b| {
            for (k, v) in entries {
                b.group("entry", |b| {
                    b.field("key", k).field("value", v);
                });
            }
        })
    }
}

/// A whole success answer for `action`; a `None` body gives the
/// metadata-only answer (Unsubscribe, DeleteTopic, Set*Attributes).
pub fn response(action: &str, body: Option<&Body>, request_id: &str) -> String {
    let result = body.map_or(String::new(), |b| format!("<{action}Result>{}</{action}Result>", b.0));
    format!(
        "<{action}Response xmlns=\"{NS}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>\n",
        escape(request_id)
    )
}

/// An error answer.
pub fn error(kind: &str, code: &str, message: &str, request_id: &str) -> String {
    format!(
        "<ErrorResponse xmlns=\"{NS}\"><Error><Type>{}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>\n",
        escape(kind),
        escape(code),
        escape(message),
        escape(request_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_replaces_what_xml_cannot_carry() {
        assert_eq!(
            escape("a<b>&\"'\r\n\u{1}"),
            "a&lt;b&gt;&amp;&quot;&apos;&#13;\n\u{FFFD}"
        );
        let mut b = Body::new();
        b.field("TopicArn", "x&y");
        assert_eq!(
            response("CreateTopic", Some(&b), "r"),
            format!(
                "<CreateTopicResponse xmlns=\"{NS}\"><CreateTopicResult><TopicArn>x&amp;y</TopicArn></CreateTopicResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></CreateTopicResponse>\n"
            )
        );
    }
}
