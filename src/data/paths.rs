//! Where a file's class comes from: its folder. Paths are '/'-separated and relative to what was dropped.

/// Files the OS or archivers leave behind; skipped silently.
pub fn is_hidden(path: &str) -> bool {
    path.split('/').any(|c| {
        c.starts_with('.') && c != "." && c != ".."
            || c == "__MACOSX"
            || c.eq_ignore_ascii_case("Thumbs.db")
            || c.eq_ignore_ascii_case("desktop.ini")
    })
}

/// Path components without empty and "." parts; `None` if the path climbs out (`..`) or is absolute.
pub fn components(path: &str) -> Option<Vec<String>> {
    let path = path.replace('\\', "/");
    if path.starts_with('/') || path.contains(':') && path.chars().nth(1) == Some(':') {
        return None;
    }
    let parts: Vec<String> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(String::from)
        .collect();
    if parts.iter().any(|c| c == "..") {
        None
    } else {
        Some(parts)
    }
}

/// A class name fit for display and export: control characters removed, whitespace collapsed, at most 64
/// characters. `None` when nothing is left.
pub fn sanitize_class_name(raw: &str) -> Option<String> {
    let cleaned: String = raw.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    let collapsed = cleaned.split_whitespace().collect::<Vec<_>>().join(" ");
    let name: String = collapsed.chars().take(64).collect();
    let name = name.trim().to_string();
    if name.is_empty() { None } else { Some(name) }
}

const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "gif", "webp", "bmp"];
const KNOWN_UNSUPPORTED_IMAGES: [&str; 8] = ["heic", "heif", "tif", "tiff", "avif", "svg", "raw", "psd"];

pub enum FileKind {
    Image,
    UnsupportedImage(String),
    Zip,
    Other(String),
}

pub fn kind_of(name: &str) -> FileKind {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    if IMAGE_EXTENSIONS.contains(&ext.as_str()) {
        FileKind::Image
    } else if KNOWN_UNSUPPORTED_IMAGES.contains(&ext.as_str()) {
        FileKind::UnsupportedImage(ext.to_uppercase())
    } else if ext == "zip" {
        FileKind::Zip
    } else {
        FileKind::Other(ext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        assert_eq!(components("a/./b//c.jpg").unwrap(), vec!["a", "b", "c.jpg"]);
        assert!(components("../evil.jpg").is_none());
        assert!(components("a/../../evil.jpg").is_none());
        assert!(components("/etc/passwd").is_none());
        assert!(components("C:/x.jpg").is_none());
        assert!(is_hidden("cats/.DS_Store") && is_hidden("__MACOSX/cats/a.jpg") && !is_hidden("cats/a.jpg"));
        assert_eq!(sanitize_class_name("  big\u{7}  cats\t"), Some("big cats".into()));
        assert_eq!(sanitize_class_name("\u{1}\u{2} "), None);
        assert_eq!(sanitize_class_name(&"x".repeat(100)).unwrap().len(), 64);
    }
}
