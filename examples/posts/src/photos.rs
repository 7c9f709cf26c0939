//! Uploaded photos: checked by their content (PNG, JPEG, GIF or WebP, decoded within a size
//! limit), stored under the media folder with a random name, served back by that name.

use std::{io::Cursor, path::PathBuf};

use image::{ImageFormat, ImageReader, Limits};

#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// Not one of the accepted formats, or not decodable as one.
    #[error("not an image")]
    NotAnImage,
    #[error("{width}x{height} pixels is larger than {max} a side")]
    TooLarge { width: u32, height: u32, max: u32 },
    #[error("storing the photo: {0}")]
    Io(#[from] std::io::Error),
    #[error("the check task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

pub struct Photos {
    dir: PathBuf,
    max_side: u32,
    public_url: String,
}

impl Photos {
    pub fn new(dir: PathBuf, max_side: u32, public_url: &str) -> Self {
        Self {
            dir,
            max_side,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Checks and stores the photo; returns its file name.
    pub async fn save(&self, bytes: Vec<u8>) -> Result<String, PhotoError> {
        let max_side = self.max_side;
        // Decoding is CPU work: off the async workers.
        let (extension, bytes) =
            tokio::task::spawn_blocking(move || check(&bytes, max_side).map(|ext| (ext, bytes))).await??;
        let name = format!("{}.{extension}", uuid::Uuid::new_v4().simple());
        tokio::fs::write(self.dir.join(&name), bytes).await?;
        Ok(name)
    }

    /// Best effort: a photo left behind is only disk space.
    pub async fn delete(&self, name: &str) {
        if let Err(e) = tokio::fs::remove_file(self.dir.join(name)).await {
            tracing::warn!(error = %e, photo = name, "deleting a photo");
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("{}/media/{name}", self.public_url)
    }

    /// The stored photo and its content type; `None` for a name we never made.
    pub async fn read(&self, name: &str) -> Option<(Vec<u8>, &'static str)> {
        let content_type = content_type(name)?;
        let bytes = tokio::fs::read(self.dir.join(name)).await.ok()?;
        Some((bytes, content_type))
    }
}

/// Names are ours: 32 hex digits and one of our extensions (nothing else reaches the disk).
fn content_type(name: &str) -> Option<&'static str> {
    let (stem, extension) = name.split_once('.')?;
    if stem.len() != 32 || !stem.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    match extension {
        "png" => Some("image/png"),
        "jpg" => Some("image/jpeg"),
        "gif" => Some("image/gif"),
        "webp" => Some("image/webp"),
        _ => None,
    }
}

/// The format found in the bytes themselves (never the file name or the declared type), the
/// dimensions from the header, then a full decode within those limits.
fn check(bytes: &[u8], max_side: u32) -> Result<&'static str, PhotoError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| PhotoError::NotAnImage)?;
    let format = reader.format().ok_or(PhotoError::NotAnImage)?;
    let extension = match format {
        ImageFormat::Png => "png",
        ImageFormat::Jpeg => "jpg",
        ImageFormat::Gif => "gif",
        ImageFormat::WebP => "webp",
        _ => return Err(PhotoError::NotAnImage),
    };
    let (width, height) = reader.into_dimensions().map_err(|_| PhotoError::NotAnImage)?;
    if width > max_side || height > max_side {
        return Err(PhotoError::TooLarge {
            width,
            height,
            max: max_side,
        });
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(max_side);
    limits.max_image_height = Some(max_side);
    reader.limits(limits);
    reader.decode().map_err(|_| PhotoError::NotAnImage)?;
    Ok(extension)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image::RgbImage::new(width, height)
            .write_to(&mut out, ImageFormat::Png)
            .unwrap();
        out.into_inner()
    }

    #[test]
    fn the_content_decides_not_the_name() {
        assert_eq!(check(&png(4, 3), 64).unwrap(), "png");
        assert!(matches!(
            check(b"GIF89a\x02\x00\x02\x00 and then no image", 64),
            Err(PhotoError::NotAnImage)
        ));
        assert!(matches!(
            check(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>", 64),
            Err(PhotoError::NotAnImage)
        ));
        let mut truncated = png(16, 16);
        truncated.truncate(40);
        assert!(matches!(check(&truncated, 64), Err(PhotoError::NotAnImage)));
    }

    #[test]
    fn dimensions_over_the_limit_are_refused_before_decoding() {
        assert!(matches!(
            check(&png(65, 2), 64),
            Err(PhotoError::TooLarge {
                width: 65,
                height: 2,
                max: 64
            })
        ));
    }

    #[test]
    fn only_names_we_make_are_served() {
        assert_eq!(content_type(&format!("{}.png", "a".repeat(32))), Some("image/png"));
        assert_eq!(content_type("../../etc/passwd"), None);
        assert_eq!(content_type(&format!("{}.svg", "a".repeat(32))), None);
    }
}
