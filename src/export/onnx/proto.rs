//! Just enough of the protobuf wire format to write an ONNX `ModelProto`: varints, length-delimited fields
//! (strings, bytes, nested messages) and the ONNX messages the graph needs. Field numbers are those of
//! `onnx.proto` (onnx/onnx, IR version 7); only the fields we write are named here.

/// `TensorProto.DataType`.
pub const FLOAT: u64 = 1;
/// `AttributeProto.AttributeType`.
const ATTR_INT: u64 = 2;
const ATTR_INTS: u64 = 7;

/// One message being written: fields appended in order.
#[derive(Default)]
pub struct Message(Vec<u8>);

impl Message {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn varint(&mut self, mut n: u64) {
        loop {
            let byte = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    /// A varint field (wire type 0): int32/int64/enum. Negative int64s are sign-extended, as protobuf does.
    pub fn int(mut self, field: u32, value: i64) -> Self {
        self.varint(u64::from(field) << 3);
        self.varint(value as u64);
        self
    }

    /// A length-delimited field (wire type 2): bytes, a string or a nested message.
    pub fn bytes(mut self, field: u32, data: &[u8]) -> Self {
        self.varint((u64::from(field) << 3) | 2);
        self.varint(data.len() as u64);
        self.0.extend_from_slice(data);
        self
    }

    pub fn string(self, field: u32, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }

    pub fn message(self, field: u32, m: Message) -> Self {
        self.bytes(field, &m.0)
    }
}

/// `TensorProto` of float32 values: dims 1, data_type 2, name 8, raw_data 9 (little-endian, as ONNX requires).
pub fn float_tensor(name: &str, dims: &[usize], values: &[f32]) -> Message {
    let raw: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    dims.iter()
        .fold(Message::new(), |m, &d| m.int(1, d as i64))
        .int(2, FLOAT as i64)
        .string(8, name)
        .bytes(9, &raw)
}

/// An attribute of a node.
pub enum Attr<'a> {
    Int(&'a str, i64),
    Ints(&'a str, &'a [i64]),
}

/// `AttributeProto`: name 1, i 3, ints 8, type 20.
fn attribute(attr: &Attr) -> Message {
    match attr {
        Attr::Int(name, v) => Message::new().string(1, name).int(3, *v).int(20, ATTR_INT as i64),
        Attr::Ints(name, vs) => vs
            .iter()
            .fold(Message::new().string(1, name), |m, &v| m.int(8, v))
            .int(20, ATTR_INTS as i64),
    }
}

/// `NodeProto`: input 1, output 2, name 3, op_type 4, attribute 5.
pub fn node(op: &str, name: &str, inputs: &[&str], outputs: &[&str], attrs: &[Attr]) -> Message {
    let m = inputs.iter().fold(Message::new(), |m, i| m.string(1, i));
    let m = outputs.iter().fold(m, |m, o| m.string(2, o));
    let m = m.string(3, name).string(4, op);
    attrs.iter().fold(m, |m, a| m.message(5, attribute(a)))
}

/// A dimension of a value's shape: fixed, or named (`batch`).
pub enum Dim<'a> {
    Fixed(usize),
    Named(&'a str),
}

/// `ValueInfoProto{name 1, type 2: TypeProto{tensor_type 1: {elem_type 1, shape 2: {dim 1: {dim_value 1 |
/// dim_param 2}}}}}` of a float tensor.
pub fn float_value_info(name: &str, dims: &[Dim]) -> Message {
    let shape = dims.iter().fold(Message::new(), |m, d| {
        m.message(
            1,
            match d {
                Dim::Fixed(n) => Message::new().int(1, *n as i64),
                Dim::Named(s) => Message::new().string(2, s),
            },
        )
    });
    let tensor_type = Message::new().int(1, FLOAT as i64).message(2, shape);
    Message::new()
        .string(1, name)
        .message(2, Message::new().message(1, tensor_type))
}

/// `StringStringEntryProto`: key 1, value 2.
pub fn entry(key: &str, value: &str) -> Message {
    Message::new().string(1, key).string(2, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields_follow_the_wire_format() {
        // From the protobuf encoding guide: field 1 = 150 is 08 96 01.
        assert_eq!(Message::new().int(1, 150).into_bytes(), [0x08, 0x96, 0x01]);
        // Field 2 = "testing" is 12 07 74 65 73 74 69 6e 67.
        assert_eq!(
            Message::new().string(2, "testing").into_bytes(),
            [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
        );
        // -1 as int64 takes ten bytes, the last 0x01.
        let minus_one = Message::new().int(3, -1).into_bytes();
        assert_eq!(minus_one.len(), 11);
        assert_eq!(minus_one[0], 3 << 3);
        assert_eq!(minus_one[10], 0x01);
    }
}
