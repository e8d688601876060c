//! Deduplication keys: `Upstash-Deduplication-Id`, or a hash of what makes two publishes the
//! same message (destination, body, content type, forwarded headers).

use sha2::{Digest, Sha256};

use super::header_list::HeaderList;
use super::options::Dedup;

/// How long a publish deduplicates later identical ones.
pub const WINDOW_MS: i64 = 10 * 60 * 1000;

/// The store key for a dedup request. `destination` is the URL or group name as given.
pub fn key(dedup: &Dedup, destination: &str, body: &[u8], headers: &HeaderList) -> String {
    match dedup {
        Dedup::Id(id) => format!("id:{id}"),
        Dedup::ContentBased => {
            let mut h = Sha256::new();
            h.update(destination.as_bytes());
            h.update([0]);
            h.update((body.len() as u64).to_le_bytes());
            h.update(body);
            // Headers are stored canonicalized; sort so their order does not matter.
            let mut pairs: Vec<(&str, &[u8])> = headers.iter().collect();
            pairs.sort();
            for (name, value) in pairs {
                h.update(name.as_bytes());
                h.update([0]);
                h.update(value);
                h.update([0]);
            }
            let digest = h.finalize();
            let mut out = String::from("content:");
            for b in digest {
                out.push_str(&format!("{b:02x}"));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hl(pairs: &[(&str, &str)]) -> HeaderList {
        HeaderList::from_pairs(pairs.iter().map(|(n, v)| (*n, v.as_bytes())))
    }

    #[test]
    fn content_key_depends_on_each_input_but_not_header_order() {
        let base = key(
            &Dedup::ContentBased,
            "https://a",
            b"x",
            &hl(&[("a", "1"), ("content-type", "t")]),
        );
        assert_eq!(
            base,
            key(
                &Dedup::ContentBased,
                "https://a",
                b"x",
                &hl(&[("content-type", "t"), ("A", "1")])
            )
        );
        assert_ne!(
            base,
            key(
                &Dedup::ContentBased,
                "https://b",
                b"x",
                &hl(&[("a", "1"), ("content-type", "t")])
            )
        );
        assert_ne!(
            base,
            key(
                &Dedup::ContentBased,
                "https://a",
                b"y",
                &hl(&[("a", "1"), ("content-type", "t")])
            )
        );
        assert_ne!(
            base,
            key(
                &Dedup::ContentBased,
                "https://a",
                b"x",
                &hl(&[("a", "2"), ("content-type", "t")])
            )
        );
        assert_ne!(
            base,
            key(&Dedup::ContentBased, "https://a", b"x", &hl(&[("a", "1")]))
        );
        assert_eq!(key(&Dedup::Id("q".into()), "x", b"", &hl(&[])), "id:q");
    }
}
