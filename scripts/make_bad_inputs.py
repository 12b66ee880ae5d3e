#!/usr/bin/env python3
"""Makes the bad-input corpus of tests/fixtures/bad/ (issue 11), deterministically.

    scripts/make_bad_inputs.py            # the large files only, into tests/fixtures/bad/large/ (git-ignored)
    scripts/make_bad_inputs.py --small    # also remake the small committed files in tests/fixtures/bad/files/

The large ones (a 12000×8000 image, a 30000×30000 decompression bomb, zip bombs with honest and lying sizes)
need only the standard library and take a few seconds; the native test runs this when they are missing. The
small ones are committed; remaking the TIFF, CMYK and HEIC files needs Pillow 13 and pillow-heif 1.8 (PyPI).
Which case uses which file, and the message each must give, is tests/fixtures/bad/cases.json.
"""
import json
import struct
import sys
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests/fixtures/bad"
SAMPLE = ROOT / "public/sample"
MIB = 1 << 20


def png_chunk(kind: bytes, data: bytes, crc: int | None = None) -> bytes:
    crc = zlib.crc32(kind + data) if crc is None else crc
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png(width, height, depth, colour, raw_rows: bytes, idat=None, ihdr_crc=None) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    idat = zlib.compress(raw_rows, 9) if idat is None else idat
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr, ihdr_crc) + png_chunk(b"IDAT", idat)
            + png_chunk(b"IEND", b""))


def gradient_rows(width, height, channels=3, depth=8, filter_byte=0) -> bytes:
    rows = bytearray()
    for y in range(height):
        rows.append(filter_byte)
        for x in range(width):
            for c in range(channels):
                v = (x * 7 + y * 13 + c * 50) % 256
                rows += bytes([v]) if depth == 8 else struct.pack(">H", v * 257)
    return bytes(rows)


def zero_deflate(n: int, wrapped: bool) -> bytes:
    """Deflate of `n` zero bytes without compressing `n` bytes: a byte-aligned block of 1 MiB of zeros (its
    back-references stay inside it) repeated, then the rest, then an empty final block."""
    def flushed(count):
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(bytes(count)) + c.flush(zlib.Z_SYNC_FLUSH)
    whole, rest = divmod(n, MIB)
    body = flushed(MIB) * whole + (flushed(rest) if rest else b"")
    body += zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH)
    if not wrapped:
        return body
    adler = ((n % 65521) << 16) | 1  # Adler-32 of zeros: A stays 1, B adds 1 per byte.
    return b"\x78\xda" + body + struct.pack(">I", adler)


def zero_crc(n: int) -> int:
    crc, block = 0, bytes(MIB)
    while n:
        take = min(n, MIB)
        crc = zlib.crc32(block[:take], crc)
        n -= take
    return crc


def raw_zip(entries) -> bytes:
    """A zip written by hand, so names and declared sizes can be anything. Each entry:
    (name, data as stored, method 0/8, crc, declared uncompressed size)."""
    out, central = bytearray(), bytearray()
    for name, data, method, crc, size in entries:
        name_b = name.encode()
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x800, method, 0, 0x21, crc, len(data), size,
                           len(name_b), 0) + name_b + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0x800, method, 0, 0x21, crc, len(data),
                               size, len(name_b), 0, 0, 0, 0, 0, offset) + name_b
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return bytes(out + central + eocd)


def stored(name: str, data: bytes):
    return (name, data, 0, zlib.crc32(data), len(data))


def tiny_png() -> bytes:
    return png(8, 8, 8, 2, gradient_rows(8, 8))


def large(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    # 12000×8000, 1 bit a pixel, all black: a complete, valid image of 96 megapixels in 12 kB.
    w, h = 12000, 8000
    rows = (bytes([0]) + bytes(w // 8)) * h
    (out / "huge_12000x8000.png").write_bytes(png(w, h, 1, 0, rows))
    # 30000×30000 RGBA: 3.6 GB of pixels deflated into 3.5 MB.
    w = h = 30000
    (out / "bomb_30000x30000.png").write_bytes(png(w, h, 8, 6, b"", idat=zero_deflate(h * (1 + 4 * w), True)))
    # Honest sizes: 17 entries of 63 MB each (under the per-entry cap), 1071 MB in all.
    entry = 63 * MIB
    data, crc = zero_deflate(entry, False), zero_crc(entry)
    honest = [(f"bomb/cats/{i:02}.jpg", data, 8, crc, entry) for i in range(17)]
    (out / "zip_bomb_honest.zip").write_bytes(raw_zip(honest))
    # Lying sizes: declares 1000 bytes, inflates to 50 MB.
    lie = 50 * MIB
    lying = [("bomb/cats/a.jpg", zero_deflate(lie, False), 8, zero_crc(lie), 1000)]
    (out / "zip_bomb_lying.zip").write_bytes(raw_zip(lying))


def snapshot(classes, version=1, magic=b"AJDS") -> bytes:
    def block(b):
        return struct.pack("<I", len(b)) + b
    out = magic + struct.pack("<II", version, len(classes))
    for name, samples in classes:
        out += block(name) + struct.pack("<I", len(samples))
        for sample_name, pixels in samples:
            out += block(sample_name) + block(pixels)
    return out


def safetensors(tensors, header_extra=None) -> bytes:
    """tensors: name → (dtype, shape, bytes); offsets in order."""
    header, data = {}, b""
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if header_extra:
        header.update(header_extra)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data


def f32(values) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def stem(weight) -> dict:
    return {"stem.conv.weight": ("F32", [32, 3, 3, 3], f32(weight)),
            "stem.bn.weight": ("F32", [32], f32([1.0] * 32)), "stem.bn.bias": ("F32", [32], f32([0.0] * 32)),
            "stem.bn.running_mean": ("F32", [32], f32([0.0] * 32)),
            "stem.bn.running_var": ("F32", [32], f32([1.0] * 32))}


def small(out: Path):
    out.mkdir(parents=True, exist_ok=True)
    w = lambda name, data: (out / name).write_bytes(data)  # noqa: E731
    photo = (SAMPLE / "tool/categorization_hammer3.jpg").read_bytes()
    w("notes.jpg", b"Shopping list\n- milk\n- bread\n")
    w("page.png", b"<!DOCTYPE html><html><body><h1>404 Not Found</h1></body></html>\n")
    w("empty.jpg", b"")
    w("truncated.jpg", photo[: len(photo) * 2 // 5])
    good = png(64, 64, 8, 2, gradient_rows(64, 64))
    w("truncated.png", good[: len(good) // 2])
    ihdr_end = 8 + 25
    w("bad_crc.png", good[: ihdr_end - 4] + b"\xde\xad\xbe\xef" + good[ihdr_end:])
    w("bad_filter.png", png(16, 16, 8, 2, gradient_rows(16, 16, filter_byte=255)))
    w("zero_width.png", png(0, 16, 8, 2, b"\0" * 16))
    idat_at = ihdr_end
    w("bad_chunk_length.png", good[:idat_at] + struct.pack(">I", 0x7FFFFFF0) + good[idat_at + 4:])
    w("bmp_60000.bmp", b"BM" + struct.pack("<IHHI", 70, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, 60000, 40000,
                                                                             1, 24, 0, 16, 2835, 2835, 0, 0) + bytes(16))
    w("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><circle cx="32" cy="32" r="30"/></svg>\n')
    w("rgb16.png", png(32, 32, 16, 2, gradient_rows(32, 32, depth=16)))
    w("grey.png", png(32, 32, 8, 0, gradient_rows(32, 32, channels=1)))
    w("not_a_zip.zip", b"This is not a zip archive, just text with a .zip name.\n")
    tiny = tiny_png()
    w("traversal.zip", raw_zip([stored("../evil.jpg", tiny), stored("cats/../../x.png", tiny)]))
    w("absolute.zip", raw_zip([stored("/etc/cats/a.png", tiny), stored("C:/cats/b.png", tiny)]))
    w("nested.zip", raw_zip([stored("cats/inner.zip", raw_zip([stored("cats/a.png", tiny)]))]))
    pixels = bytes(224 * 224 * 3)
    one = snapshot([(b"cats", [(b"a.jpg", pixels)])])
    w("snapshot_truncated.bin", one[: len(one) // 3])
    w("snapshot_not_saved.bin", b"PK\x03\x04" + one[4:64])
    w("snapshot_version.bin", snapshot([], version=7))
    w("snapshot_short_pixels.bin", snapshot([(b"cats", [(b"a.jpg", bytes(10))])]))
    w("snapshot_huge_count.bin", snapshot([]) [:8] + struct.pack("<I", 0xFFFFFFFF) + b"\x04\0\0\0cats\xff\xff\xff\xff")
    w("snapshot_bad_utf8.bin", snapshot([(b"c\xffats", [])]))
    w("weights_truncated.safetensors", safetensors(stem([0.1] * 864))[:200])
    w("weights_not_json.safetensors", struct.pack("<Q", 16) + b"{not json at all" + bytes(8))
    w("weights_missing.safetensors", safetensors({"classifier.bias": ("F32", [2], f32([0.0, 0.0]))}))
    shape = stem([0.1] * 864)
    shape["stem.conv.weight"] = ("F32", [32, 3, 5, 5], f32([0.1] * 2400))
    w("weights_shape.safetensors", safetensors(shape))
    dtype = stem([0.1] * 864)
    dtype["stem.conv.weight"] = ("I32", [32, 3, 3, 3], bytes(864 * 4))
    w("weights_dtype.safetensors", safetensors(dtype))
    w("weights_nan.safetensors", safetensors(stem([float("nan")] + [0.1] * 863)))
    overlap = safetensors(stem([0.1] * 864))
    w("weights_offsets.safetensors", overlap[:-100])
    # Pillow for the formats the standard library cannot write.
    from PIL import Image
    import pillow_heif
    pillow_heif.register_heif_opener()
    img = Image.new("RGB", (48, 32))
    for x in range(48):
        for y in range(32):
            img.putpixel((x, y), (x * 5, y * 8, 128))
    for name, mode, fmt, extra in [("scan.tif", "RGB", "TIFF", {}), ("photo.heic", "RGB", "HEIF", {"quality": 50}),
                                   ("cmyk.jpg", "CMYK", "JPEG", {"quality": 90}),
                                   ("grey.jpg", "L", "JPEG", {"quality": 90})]:
        path = out / name
        img.convert(mode).save(path, fmt, **extra)


def main():
    if "--small" in sys.argv:
        small(BAD / "files")
    large(BAD / "large")


if __name__ == "__main__":
    main()
