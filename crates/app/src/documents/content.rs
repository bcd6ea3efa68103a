//! What comes in is checked (DESIGN §5): the type is decided from the bytes, never from the name
//! or the client's Content-Type, against an allow-list; Word files are opened far enough to
//! refuse zip bombs; names are cleaned of paths, control and bidirectional characters. What goes
//! out is always an attachment, `nosniff`, under a sandboxing CSP (the web layer's job).

/// The document types Tiaki accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PDF.
    Pdf,
    /// PNG image.
    Png,
    /// JPEG image.
    Jpeg,
    /// HEIC/HEIF image (phone photos).
    Heic,
    /// TIFF image (scans).
    Tiff,
    /// Plain UTF-8 text.
    Text,
    /// Word document (Office Open XML).
    Docx,
}

impl Kind {
    /// The media type it is stored and served as.
    #[must_use]
    pub const fn media_type(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Heic => "image/heic",
            Self::Tiff => "image/tiff",
            Self::Text => "text/plain; charset=utf-8",
            Self::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        }
    }

    /// The file extension it is served with.
    #[must_use]
    pub const fn extension(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Heic => "heic",
            Self::Tiff => "tif",
            Self::Text => "txt",
            Self::Docx => "docx",
        }
    }

    /// The stored name, read back.
    #[must_use]
    pub fn from_media_type(s: &str) -> Option<Self> {
        [Self::Pdf, Self::Png, Self::Jpeg, Self::Heic, Self::Tiff, Self::Text, Self::Docx]
            .into_iter()
            .find(|k| k.media_type() == s)
    }
}

/// Why content was refused; the message is for the person uploading.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Not one of the accepted types.
    #[error(
        "This type of file is not accepted. Upload a PDF, a photo (JPEG, PNG, HEIC or TIFF), a Word document or plain text."
    )]
    UnknownType,
    /// A web page or image with script in it.
    #[error(
        "Web pages and SVG images are not accepted, because they can carry code. Save it as a PDF and upload that."
    )]
    Markup,
    /// A Word file that is damaged or expands to far more than its size (a "zip bomb").
    #[error("This Word document could not be checked safely. Save it again, or as a PDF, and upload that.")]
    UnsafeArchive,
}

/// How many bytes of the start [`sniff`] needs.
pub const HEAD: usize = 512;

fn looks_like_markup(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&head[..head.len().min(HEAD)]).to_ascii_lowercase();
    let t = text.trim_start_matches('\u{feff}').trim_start();
    ["<!doctype", "<html", "<svg", "<?xml", "<script", "<head", "<body", "<iframe", "<object"]
        .iter()
        .any(|m| t.starts_with(m))
        || text.contains("<script")
        || text.contains("<svg")
}

/// Decides the type from the first bytes (at least [`HEAD`], or the whole file if shorter).
///
/// # Errors
/// [`Refused`] for anything not on the allow-list, and for markup dressed as text.
pub fn sniff(head: &[u8]) -> Result<Kind, Refused> {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"%PDF-") {
        return Ok(Kind::Pdf);
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Ok(Kind::Png);
    }
    if starts(&[0xFF, 0xD8, 0xFF]) {
        return Ok(Kind::Jpeg);
    }
    if starts(b"II*\0") || starts(b"MM\0*") {
        return Ok(Kind::Tiff);
    }
    if head.len() >= 12
        && &head[4..8] == b"ftyp"
        && [b"heic", b"heix", b"mif1", b"heim", b"heis", b"hevc"].iter().any(|b| &head[8..12] == *b)
    {
        return Ok(Kind::Heic);
    }
    if starts(b"PK\x03\x04") {
        // Confirmed (or refused) by `check_docx_tail` once the whole file has been read.
        return Ok(Kind::Docx);
    }
    if looks_like_markup(head) {
        return Err(Refused::Markup);
    }
    let valid_text = match std::str::from_utf8(head) {
        Ok(_) => true,
        // A multi-byte character cut at the end of the window is fine.
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    };
    if valid_text && !head.contains(&0) && !head.iter().any(|b| *b < 0x09 || (*b > 0x0D && *b < 0x20 && *b != 0x1B)) {
        return Ok(Kind::Text);
    }
    Err(Refused::UnknownType)
}

fn u16le(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 2).map(|s| u64::from(u16::from_le_bytes([s[0], s[1]])))
}

fn u32le(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 4).map(|s| u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]])))
}

/// Checks a Word document from the last bytes of the file (`tail`, at most 64 KiB, ending at
/// byte `total`): its central directory must be in the tail, name the parts a Word document has,
/// and not expand to more than 100 times its size or 200 MiB (zip bombs).
///
/// # Errors
/// [`Refused::UnsafeArchive`] when it cannot be checked or fails a check.
pub fn check_docx_tail(tail: &[u8], total: u64) -> Result<(), Refused> {
    let bad = Refused::UnsafeArchive;
    // End of central directory: signature, then 18 bytes, then a comment of up to 64 KiB.
    let eocd =
        (0..tail.len().saturating_sub(21)).rev().find(|&i| tail[i..].starts_with(b"PK\x05\x06")).ok_or(bad.clone())?;
    let entries = u16le(tail, eocd + 10).ok_or(bad.clone())?;
    let cd_size = u32le(tail, eocd + 12).ok_or(bad.clone())?;
    let cd_offset = u32le(tail, eocd + 16).ok_or(bad.clone())?;
    let tail_start = total.checked_sub(tail.len() as u64).ok_or(bad.clone())?;
    if entries == 0 || entries > 10_000 || cd_offset < tail_start || cd_offset + cd_size > total {
        return Err(bad);
    }
    let mut at = usize::try_from(cd_offset - tail_start).map_err(|_| bad.clone())?;
    let (mut uncompressed, mut content_types, mut word) = (0u64, false, false);
    for _ in 0..entries {
        if tail.get(at..at + 4) != Some(b"PK\x01\x02") {
            return Err(bad);
        }
        let method = u16le(tail, at + 10).ok_or(bad.clone())?;
        let csize = u32le(tail, at + 20).ok_or(bad.clone())?;
        let usize_ = u32le(tail, at + 24).ok_or(bad.clone())?;
        let name_len = usize::try_from(u16le(tail, at + 28).ok_or(bad.clone())?).map_err(|_| bad.clone())?;
        let extra = usize::try_from(u16le(tail, at + 30).ok_or(bad.clone())?).map_err(|_| bad.clone())?;
        let comment = usize::try_from(u16le(tail, at + 32).ok_or(bad.clone())?).map_err(|_| bad.clone())?;
        let name = tail.get(at + 46..at + 46 + name_len).ok_or(bad.clone())?;
        // ZIP64 markers, or anything but stored/deflated, are not what Word writes.
        if csize == 0xFFFF_FFFF || usize_ == 0xFFFF_FFFF || !(method == 0 || method == 8) {
            return Err(bad);
        }
        uncompressed += usize_;
        content_types |= name == b"[Content_Types].xml";
        word |= name.starts_with(b"word/");
        at += 46 + name_len + extra + comment;
    }
    if !content_types || !word || uncompressed > 200 * 1024 * 1024 || uncompressed > total.saturating_mul(100) {
        return Err(bad);
    }
    Ok(())
}

/// Cleans a file name for display and for `Content-Disposition`: no directories, no control,
/// format (bidirectional override) or reserved characters, at most 120 characters, never empty.
#[must_use]
pub fn clean_filename(name: &str, kind: Kind) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control())
        .filter(
            |c| !matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}'),
        )
        .map(|c| if matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*' | ';') { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    let stem = match cleaned.rsplit_once('.') {
        Some((stem, _)) if !stem.is_empty() => stem,
        _ => cleaned,
    };
    let mut stem: String = stem.chars().take(110).collect();
    if stem.trim().is_empty() {
        stem = "document".into();
    }
    format!("{}.{}", stem.trim(), kind.extension())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn zip(entries: &[(&str, u32, u32)]) -> Vec<u8> {
        // A central directory and end record, as a zip file's tail, preceded by filler.
        let mut out = b"PK\x03\x04".to_vec();
        out.extend(std::iter::repeat_n(0u8, 100));
        let cd_offset = u32::try_from(out.len()).unwrap();
        let mut cd = Vec::new();
        for (name, csize, usize_) in entries {
            cd.extend_from_slice(b"PK\x01\x02");
            cd.extend_from_slice(&[0; 6]);
            cd.extend_from_slice(&8u16.to_le_bytes());
            cd.extend_from_slice(&[0; 8]);
            cd.extend_from_slice(&csize.to_le_bytes());
            cd.extend_from_slice(&usize_.to_le_bytes());
            cd.extend_from_slice(&u16::try_from(name.len()).unwrap().to_le_bytes());
            cd.extend_from_slice(&[0; 16]);
            cd.extend_from_slice(name.as_bytes());
        }
        let cd_size = u32::try_from(cd.len()).unwrap();
        out.extend_from_slice(&cd);
        out.extend_from_slice(b"PK\x05\x06");
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&u16::try_from(entries.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&u16::try_from(entries.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&cd_size.to_le_bytes());
        out.extend_from_slice(&cd_offset.to_le_bytes());
        out.extend_from_slice(&[0; 2]);
        out
    }

    #[test]
    fn allowed_types_are_recognised_by_content() {
        assert_eq!(sniff(b"%PDF-1.7\n..."), Ok(Kind::Pdf));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0"), Ok(Kind::Png));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0]), Ok(Kind::Jpeg));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0"), Ok(Kind::Heic));
        assert_eq!(sniff(b"II*\0\x08\0"), Ok(Kind::Tiff));
        assert_eq!(sniff("Kia ora — blood test results attached\n".as_bytes()), Ok(Kind::Text));
        assert_eq!(sniff(b""), Ok(Kind::Text));
    }

    #[test]
    fn hostile_content_is_refused() {
        assert_eq!(sniff(b"<!DOCTYPE html><html><script>steal()</script>"), Err(Refused::Markup));
        assert_eq!(sniff(b"  <html><body>hi"), Err(Refused::Markup));
        assert_eq!(
            sniff(b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script>x()</script></svg>"),
            Err(Refused::Markup)
        );
        assert_eq!(sniff(b"notes\n<svg onload=alert(1)>"), Err(Refused::Markup));
        assert_eq!(sniff(b"MZ\x90\0\x03\0\0\0"), Err(Refused::UnknownType), "a Windows executable renamed .pdf");
        assert_eq!(sniff(b"\x7fELF\x02\x01\x01"), Err(Refused::UnknownType));
        assert_eq!(sniff(b"text with a \0 NUL"), Err(Refused::UnknownType));
    }

    #[test]
    fn word_documents_are_checked_for_zip_bombs() {
        let good = zip(&[("[Content_Types].xml", 300, 1200), ("word/document.xml", 2000, 9000)]);
        assert_eq!(check_docx_tail(&good, good.len() as u64), Ok(()));
        let bomb = zip(&[("[Content_Types].xml", 300, 1200), ("word/document.xml", 2000, 4_000_000_000)]);
        assert_eq!(check_docx_tail(&bomb, bomb.len() as u64), Err(Refused::UnsafeArchive));
        let not_word = zip(&[("payload.exe", 300, 1200)]);
        assert_eq!(check_docx_tail(&not_word, not_word.len() as u64), Err(Refused::UnsafeArchive));
        assert_eq!(check_docx_tail(b"PK\x03\x04 truncated", 17), Err(Refused::UnsafeArchive));
    }

    #[test]
    fn file_names_are_cleaned() {
        assert_eq!(clean_filename("../../etc/passwd", Kind::Text), "passwd.txt");
        assert_eq!(clean_filename("C:\\Users\\me\\scan.PDF", Kind::Pdf), "scan.pdf");
        assert_eq!(clean_filename("evil\0name.pdf", Kind::Pdf), "evilname.pdf");
        assert_eq!(
            clean_filename("invoice\u{202E}fdp.exe", Kind::Pdf),
            "invoicefdp.pdf",
            "RTL override removed, real type's extension"
        );
        assert_eq!(clean_filename("   ", Kind::Png), "document.png");
        assert_eq!(clean_filename(".htaccess", Kind::Text), "htaccess.txt");
        assert_eq!(clean_filename("a\"b;c.pdf", Kind::Pdf), "a_b_c.pdf");
        assert!(clean_filename(&"x".repeat(500), Kind::Pdf).len() <= 114);
    }
}
