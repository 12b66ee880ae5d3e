//! A small FlatBuffers writer: just what the TFLite model and metadata schemas need (tables of scalars and
//! offsets, vectors of scalars, of offsets and of bytes with a forced alignment, strings, a file identifier).
//!
//! Built back to front, as FlatBuffers are: children first, each object before (at a higher address than) what
//! refers to it, so every `uoffset` points forward. The bytes are kept reversed (`rev`), so prepending is a push;
//! an object's position is its distance from the buffer's end (`rev.len()` once written), which never changes.
//! A table's vtable is written just before its table (at a higher address: the table's `soffset` is negative,
//! which the format allows).

/// A written object: its distance from the end of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos(usize);

/// One field of a table: its id in the schema (the order of declaration, a union taking two) and value.
#[derive(Debug, Clone, Copy)]
pub enum Field {
    U8(u16, u8),
    I32(u16, i32),
    U32(u16, u32),
    F32(u16, f32),
    Offset(u16, Pos),
}

impl Field {
    fn id(&self) -> u16 {
        match *self {
            Field::U8(id, _) | Field::I32(id, _) | Field::U32(id, _) | Field::F32(id, _) | Field::Offset(id, _) => id,
        }
    }

    fn size(&self) -> usize {
        if matches!(self, Field::U8(..)) { 1 } else { 4 }
    }
}

#[derive(Default)]
pub struct Builder {
    rev: Vec<u8>,
}

impl Builder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Writes `bytes` in front of everything written so far.
    fn prepend(&mut self, bytes: &[u8]) {
        self.rev.extend(bytes.iter().rev());
    }

    /// Pads with zeros so that `size` bytes written next end up starting at a multiple of `align`.
    fn align(&mut self, size: usize, align: usize) {
        let pad = (align - (self.rev.len() + size) % align) % align;
        self.rev.resize(self.rev.len() + pad, 0);
    }

    fn here(&self) -> Pos {
        Pos(self.rev.len())
    }

    /// A vector of fixed-size elements (`elem` bytes each, little-endian, already laid out in `bytes`) whose
    /// first element starts at a multiple of `align` (at least 4: the length before it is a `u32`).
    pub fn vector_bytes(&mut self, bytes: &[u8], elem: usize, align: usize) -> Pos {
        self.align(bytes.len(), align.max(4));
        self.prepend(bytes);
        self.prepend(&((bytes.len() / elem) as u32).to_le_bytes());
        self.here()
    }

    pub fn vector_i32(&mut self, values: &[i32]) -> Pos {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.vector_bytes(&bytes, 4, 4)
    }

    pub fn vector_f32(&mut self, values: &[f32]) -> Pos {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.vector_bytes(&bytes, 4, 4)
    }

    pub fn vector_i64(&mut self, values: &[i64]) -> Pos {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.vector_bytes(&bytes, 8, 8)
    }

    /// A vector of offsets to objects written earlier.
    pub fn vector_offsets(&mut self, targets: &[Pos]) -> Pos {
        self.align(4 * targets.len() + 4, 4);
        for target in targets.iter().rev() {
            // This element will sit at `rev.len() + 4` from the end; it points `that - target` bytes forward.
            let at = self.rev.len() + 4;
            self.prepend(&((at - target.0) as u32).to_le_bytes());
        }
        self.prepend(&(targets.len() as u32).to_le_bytes());
        self.here()
    }

    /// A string: its UTF-8 bytes and a terminating zero, after its length.
    pub fn string(&mut self, s: &str) -> Pos {
        self.align(s.len() + 1, 4);
        self.prepend(&[0]);
        self.prepend(s.as_bytes());
        self.prepend(&(s.len() as u32).to_le_bytes());
        self.here()
    }

    /// A table of `fields` (any order; the absent ones take the schema's defaults).
    pub fn table(&mut self, fields: &[Field]) -> Pos {
        // The table's layout: its soffset, then the 4-byte fields, then the bytes, padded to 4.
        let mut sorted = fields.to_vec();
        sorted.sort_by_key(|f| std::cmp::Reverse(f.size()));
        let mut at = 4;
        let mut offsets = Vec::with_capacity(sorted.len());
        for f in &sorted {
            offsets.push(at);
            at += f.size();
        }
        let inline = at.div_ceil(4) * 4;
        // The vtable: its size, the table's size, each field's offset in the table by id (0: absent).
        let slots = fields.iter().map(|f| f.id() as usize + 1).max().unwrap_or(0);
        let mut vtable = vec![0u16; 2 + slots];
        vtable[0] = (2 * vtable.len()) as u16;
        vtable[1] = inline as u16;
        for (f, &o) in sorted.iter().zip(&offsets) {
            vtable[2 + f.id() as usize] = o as u16;
        }
        let vbytes: Vec<u8> = vtable.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.align(vbytes.len(), 2);
        self.prepend(&vbytes);
        let vtable_pos = self.rev.len();
        self.align(inline, 4);
        let table_pos = self.rev.len() + inline;
        let mut bytes = vec![0u8; inline];
        // soffset = table address - vtable address (negative: the vtable follows the table).
        let soffset = vtable_pos as i64 - table_pos as i64;
        bytes[..4].copy_from_slice(&(soffset as i32).to_le_bytes());
        for (f, &o) in sorted.iter().zip(&offsets) {
            match *f {
                Field::U8(_, v) => bytes[o] = v,
                Field::I32(_, v) => bytes[o..o + 4].copy_from_slice(&v.to_le_bytes()),
                Field::U32(_, v) => bytes[o..o + 4].copy_from_slice(&v.to_le_bytes()),
                Field::F32(_, v) => bytes[o..o + 4].copy_from_slice(&v.to_le_bytes()),
                Field::Offset(_, target) => {
                    let value = (table_pos - o) - target.0;
                    bytes[o..o + 4].copy_from_slice(&(value as u32).to_le_bytes());
                }
            }
        }
        self.prepend(&bytes);
        Pos(table_pos)
    }

    /// The finished buffer: the offset to `root` and the 4-byte file identifier first, the whole padded so its
    /// start is aligned to 16 (the forced alignment of the weight buffers).
    pub fn finish(mut self, root: Pos, identifier: &[u8; 4]) -> Vec<u8> {
        self.align(8, 16);
        self.prepend(identifier);
        let at = self.rev.len() + 4;
        self.prepend(&((at - root.0) as u32).to_le_bytes());
        self.rev.reverse();
        self.rev
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u32_at(b: &[u8], at: usize) -> usize {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize
    }

    /// A table with a string and a scalar, read back by following the offsets as a reader would.
    #[test]
    fn a_table_reads_back() {
        let mut b = Builder::new();
        let name = b.string("abc");
        let data = b.vector_bytes(&[1, 2, 3], 1, 16);
        let root = b.table(&[Field::Offset(0, name), Field::I32(2, -7), Field::Offset(3, data)]);
        let buf = b.finish(root, b"TEST");
        assert_eq!(buf.len() % 16, 0);
        assert_eq!(&buf[4..8], b"TEST");
        let table = u32_at(&buf, 0);
        let soffset = i32::from_le_bytes(buf[table..table + 4].try_into().unwrap());
        let vtable = (table as i64 - soffset as i64) as usize;
        let field = |id: usize| u16::from_le_bytes(buf[vtable + 4 + 2 * id..vtable + 6 + 2 * id].try_into().unwrap());
        assert_eq!(field(1), 0, "absent field");
        let f0 = table + field(0) as usize;
        let s = f0 + u32_at(&buf, f0);
        assert_eq!(u32_at(&buf, s), 3);
        assert_eq!(&buf[s + 4..s + 8], b"abc\0");
        let f2 = table + field(2) as usize;
        assert_eq!(i32::from_le_bytes(buf[f2..f2 + 4].try_into().unwrap()), -7);
        let f3 = table + field(3) as usize;
        let v = f3 + u32_at(&buf, f3);
        assert_eq!((v + 4) % 16, 0, "forced alignment");
        assert_eq!(&buf[v + 4..v + 7], &[1, 2, 3]);
    }
}
