//! The pages' HTML escaping, used by askama for every value a template inserts (set for `.html`
//! templates in `askama.toml`): the five characters that can end a text or an attribute value
//! become named entities, as browsers and the page's tests read them.

use std::fmt;

#[derive(Debug, Clone, Copy)]
pub struct HtmlEntities;

impl askama::filters::Escaper for HtmlEntities {
    fn write_escaped_str<W: fmt::Write>(&self, mut dest: W, text: &str) -> fmt::Result {
        let mut done = 0;
        for (i, b) in text.bytes().enumerate() {
            let entity = match b {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                b'\'' => "&#39;",
                _ => continue,
            };
            dest.write_str(&text[done..i])?;
            dest.write_str(entity)?;
            done = i + 1;
        }
        dest.write_str(&text[done..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use askama::filters::Escaper;

    #[test]
    fn the_five_characters_become_entities() {
        let mut out = String::new();
        HtmlEntities
            .write_escaped_str(&mut out, "a<b>&\"c'd 中文")
            .unwrap();
        assert_eq!(out, "a&lt;b&gt;&amp;&quot;c&#39;d 中文");
    }
}
