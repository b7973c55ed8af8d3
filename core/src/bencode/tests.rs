use proptest::prelude::*;

use super::*;

fn err(input: &[u8]) -> DecodeError {
    decode(input).expect_err("input must be rejected")
}

fn lenient_err(input: &[u8]) -> DecodeError {
    decode_with(input, DecodeOptions::LENIENT).expect_err("input must be rejected")
}

fn e(offset: usize, kind: DecodeErrorKind) -> DecodeError {
    DecodeError { offset, kind }
}

#[test]
fn decodes_each_type() {
    assert_eq!(decode(b"i42e").unwrap(), Value::Int(42));
    assert_eq!(decode(b"i-42e").unwrap(), Value::Int(-42));
    assert_eq!(decode(b"i0e").unwrap(), Value::Int(0));
    assert_eq!(decode(b"4:spam").unwrap(), Value::Bytes(b"spam"));
    assert_eq!(decode(b"0:").unwrap(), Value::Bytes(b""));
    let list = decode(b"l4:spami7ee").unwrap();
    let items: Vec<_> = list.as_list().unwrap().iter().cloned().collect();
    assert_eq!(items, vec![Value::Bytes(b"spam"), Value::Int(7)]);
    let dict = decode(b"d3:cow3:moo4:spam4:eggse").unwrap();
    let dict = dict.as_dict().unwrap();
    assert_eq!(dict.get(b"cow").and_then(Value::as_str), Some("moo"));
    assert_eq!(dict.get(b"spam").and_then(Value::as_str), Some("eggs"));
    assert_eq!(dict.get(b"x"), None);
}

#[test]
fn integer_extremes() {
    assert_eq!(
        decode(b"i9223372036854775807e").unwrap(),
        Value::Int(i64::MAX)
    );
    assert_eq!(
        decode(b"i-9223372036854775808e").unwrap(),
        Value::Int(i64::MIN)
    );
    assert_eq!(
        err(b"i9223372036854775808e"),
        e(0, DecodeErrorKind::IntegerOverflow)
    );
    assert_eq!(
        err(b"i-9223372036854775809e"),
        e(0, DecodeErrorKind::IntegerOverflow)
    );
    assert_eq!(
        err(b"i99999999999999999999999e"),
        e(1, DecodeErrorKind::IntegerOverflow)
    );
}

#[test]
fn keeps_raw_spans() {
    let input = b"d4:infod6:lengthi5e4:name1:xe5:otherl1:aee";
    let top = decode(input).unwrap();
    let info = top
        .as_dict()
        .unwrap()
        .get(b"info")
        .unwrap()
        .as_dict()
        .unwrap();
    assert_eq!(info.raw(), Some(&b"d6:lengthi5e4:name1:xe"[..]));
    let other = top
        .as_dict()
        .unwrap()
        .get(b"other")
        .unwrap()
        .as_list()
        .unwrap();
    assert_eq!(other.raw(), Some(&b"l1:ae"[..]));
    assert_eq!(top.as_dict().unwrap().raw(), Some(&input[..]));
}

#[test]
fn strict_rejections_with_offsets() {
    assert_eq!(err(b"i03e"), e(1, DecodeErrorKind::LeadingZero));
    assert_eq!(err(b"i-0e"), e(1, DecodeErrorKind::NegativeZero));
    assert_eq!(err(b"i-03e"), e(2, DecodeErrorKind::LeadingZero));
    assert_eq!(err(b"03:abc"), e(0, DecodeErrorKind::LeadingZero));
    assert_eq!(err(b"d1:bi1e1:ai2ee"), e(7, DecodeErrorKind::UnsortedKey));
    assert_eq!(err(b"d1:ai1e1:ai2ee"), e(7, DecodeErrorKind::DuplicateKey));
    assert_eq!(err(b"i1ei2e"), e(3, DecodeErrorKind::TrailingData));
    assert_eq!(err(b"4:spamx"), e(6, DecodeErrorKind::TrailingData));
}

#[test]
fn lenient_accepts_sloppy_but_not_duplicates() {
    let v = decode_with(b"d1:bi1e1:ai02ee", DecodeOptions::LENIENT).unwrap();
    let d = v.as_dict().unwrap();
    assert_eq!(d.get(b"a"), Some(&Value::Int(2)));
    assert_eq!(d.get(b"b"), Some(&Value::Int(1)));
    // Re-encoding sorts the keys.
    assert_eq!(v.to_vec(), b"d1:ai2e1:bi1ee");
    assert_eq!(
        decode_with(b"i-0e", DecodeOptions::LENIENT).unwrap(),
        Value::Int(0)
    );
    assert_eq!(
        decode_with(b"i1etrailing", DecodeOptions::LENIENT).unwrap(),
        Value::Int(1)
    );
    // A duplicate that is not adjacent to its twin.
    assert_eq!(
        lenient_err(b"d1:bi1e1:ai2e1:bi3ee"),
        e(0, DecodeErrorKind::DuplicateKey)
    );
    assert_eq!(
        lenient_err(b"d1:ai1e1:ai2ee"),
        e(7, DecodeErrorKind::DuplicateKey)
    );
}

#[test]
fn malformed_inputs() {
    assert_eq!(err(b""), e(0, DecodeErrorKind::UnexpectedEof));
    assert_eq!(err(b"i"), e(1, DecodeErrorKind::UnexpectedEof));
    assert_eq!(err(b"i12"), e(3, DecodeErrorKind::UnexpectedEof));
    assert_eq!(err(b"ie"), e(1, DecodeErrorKind::EmptyInteger));
    assert_eq!(err(b"i-e"), e(1, DecodeErrorKind::EmptyInteger));
    assert_eq!(err(b"i1-2e"), e(2, DecodeErrorKind::UnexpectedByte(b'-')));
    assert_eq!(err(b"x"), e(0, DecodeErrorKind::UnexpectedByte(b'x')));
    assert_eq!(
        err(b"5:abc"),
        e(0, DecodeErrorKind::StringTooLong { declared: 5 })
    );
    assert_eq!(
        err(b"99999999999999999999999:"),
        e(0, DecodeErrorKind::IntegerOverflow)
    );
    assert_eq!(
        err(b"18446744073709551615:"),
        e(0, DecodeErrorKind::StringTooLong { declared: u64::MAX })
    );
    assert_eq!(err(b"l"), e(1, DecodeErrorKind::UnexpectedEof));
    assert_eq!(err(b"d"), e(1, DecodeErrorKind::UnexpectedEof));
    assert_eq!(err(b"di1ei2ee"), e(1, DecodeErrorKind::KeyNotString));
    assert_eq!(err(b"d1:ae"), e(4, DecodeErrorKind::UnexpectedByte(b'e')));
    assert_eq!(err(b"-1:"), e(0, DecodeErrorKind::UnexpectedByte(b'-')));
}

#[test]
fn depth_limit() {
    let options = DecodeOptions::STRICT.with_max_depth(3);
    assert!(decode_with(b"llleee", options).is_ok());
    assert_eq!(
        decode_with(b"lllleeee", options).unwrap_err(),
        e(3, DecodeErrorKind::DepthExceeded)
    );
    // The default limit holds against very deep input without exhausting the stack.
    let mut deep = vec![b'l'; 100_000];
    deep.extend(std::iter::repeat_n(b'e', 100_000));
    assert_eq!(err(&deep).kind, DecodeErrorKind::DepthExceeded);
}

#[test]
fn token_limit() {
    let options = DecodeOptions::STRICT.with_max_tokens(3);
    assert!(decode_with(b"li1ei2ee", options).is_ok());
    assert_eq!(
        decode_with(b"li1ei2ei3ee", options).unwrap_err(),
        e(7, DecodeErrorKind::TokenLimitExceeded)
    );
    // Keys count too.
    assert_eq!(
        decode_with(b"d1:ai1e1:bi2ee", options).unwrap_err(),
        e(7, DecodeErrorKind::TokenLimitExceeded)
    );
}

#[test]
fn decode_prefix_leaves_the_rest() {
    let input = b"d8:msg_typei1e5:piecei0eexxxxxxxx";
    let (v, used) = decode_prefix(input, DecodeOptions::STRICT).unwrap();
    assert_eq!(used, 25);
    assert_eq!(&input[used..], b"xxxxxxxx");
    assert_eq!(v.as_dict().unwrap().get(b"piece"), Some(&Value::Int(0)));
}

#[test]
fn dict_insert_keeps_order_and_replaces() {
    let mut d = Dict::new();
    d.insert(b"zeta", 1);
    d.insert(b"alpha", 2);
    d.insert(b"mid", 3);
    d.insert(b"alpha", 4);
    assert_eq!(Value::Dict(d).to_vec(), b"d5:alphai4e3:midi3e4:zetai1ee");
}

#[test]
fn writer_matches_value_encoding() {
    let mut out = Vec::new();
    let mut w = DictWriter::new(&mut out);
    w.int(b"a", -5);
    w.raw(b"b", b"le");
    w.bytes(b"c", b"");
    w.finish();
    let mut d = Dict::new();
    d.insert(b"a", -5);
    d.insert(b"b", List::new());
    d.insert(b"c", &b""[..]);
    assert_eq!(out, Value::Dict(d).to_vec());
}

/// An owned value tree, so proptest can generate documents.
#[derive(Clone, Debug)]
enum Owned {
    Int(i64),
    Bytes(Vec<u8>),
    List(Vec<Owned>),
    Dict(std::collections::BTreeMap<Vec<u8>, Owned>),
}

impl Owned {
    fn borrow(&self) -> Value<'_> {
        match self {
            Owned::Int(i) => Value::Int(*i),
            Owned::Bytes(b) => Value::Bytes(b),
            Owned::List(l) => Value::List(l.iter().map(Owned::borrow).collect()),
            Owned::Dict(d) => {
                let mut out = Dict::new();
                for (k, v) in d {
                    out.insert(k, v.borrow());
                }
                Value::Dict(out)
            }
        }
    }
}

fn owned() -> impl Strategy<Value = Owned> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Owned::Int),
        proptest::collection::vec(any::<u8>(), 0..24).prop_map(Owned::Bytes),
    ];
    leaf.prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Owned::List),
            proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..8),
                inner,
                0..8
            )
            .prop_map(Owned::Dict),
        ]
    })
}

proptest! {
    #[test]
    fn decode_of_encode_is_identity(doc in owned()) {
        let value = doc.borrow();
        let bytes = value.to_vec();
        let decoded = decode(&bytes).expect("canonical encoding must decode strictly");
        prop_assert_eq!(&decoded, &value);
        // And the encoding is canonical: encoding again gives the same bytes.
        prop_assert_eq!(decoded.to_vec(), bytes);
    }

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&input);
        if let Ok(v) = decode_with(&input, DecodeOptions::LENIENT) {
            // Whatever lenient mode accepts re-encodes to something strict mode accepts.
            let canonical = v.to_vec();
            prop_assert_eq!(decode(&canonical).expect("canonical re-encoding"), v);
        }
    }
}
