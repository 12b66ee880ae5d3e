//! What can go wrong, as values. Each flow keeps its own last error and its panel shows it there.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum AppError {
    /// The model could not be downloaded, or its weights are damaged.
    ModelLoad(String),
    /// The bundled sample could not be fetched or read.
    Sample(String),
    /// A typed class name was refused; the box shows the old name again.
    Rename { name: String, why: String },
    /// A new class's name was refused before any image was read.
    NewClass(String),
    /// The backbone could not classify an image for the ImageNet preview.
    Preview { image: String, why: String },
    /// Out-of-range training options.
    Options(String),
    /// The dataset cannot be trained on yet (every reason).
    NotTrainable(Vec<String>),
    /// Embedding or training failed.
    Training(String),
    /// A download could not be made.
    Export(String),
    /// Work could not be kept for the next visit (it stays in this tab).
    Save { what: &'static str, why: String },
    /// A drop that would not fit in the browser's storage was refused before any file was read.
    NoRoom(String),
    /// Work saved at the last visit could not be read (it was dropped).
    Restore { what: &'static str, why: String },
    /// Try it could not classify an image.
    Try(String),
    /// The camera could not be used (refused, absent, busy).
    Camera(String),
    /// An image could not be moved to another class.
    Move(String),
    /// The project file could not be written.
    ProjectSave(String),
    /// A project file was refused; what was loaded stays.
    ProjectOpen { file: String, why: String },
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::ModelLoad(e) => write!(f, "The model could not be loaded: {e}"),
            AppError::Sample(e) => write!(f, "Could not load the sample: {e}"),
            AppError::Rename { name, why } => write!(f, "Cannot rename to “{name}”: {why}."),
            AppError::NewClass(why) => write!(f, "Cannot start that class: {why}."),
            AppError::Preview { image, why } => write!(f, "Could not classify {image}: {why}"),
            AppError::Options(e) => write!(f, "Options: {e}"),
            AppError::NotTrainable(problems) => write!(f, "{}", problems.join(" ")),
            AppError::Training(e) => write!(f, "Could not train: {e}"),
            AppError::Export(e) => write!(f, "Export failed: {e}"),
            AppError::Save { what, why } => write!(
                f,
                "{what} could not be saved for the next visit ({why}); it stays in this tab."
            ),
            AppError::NoRoom(why) => write!(f, "Not added: {why}. Nothing already loaded changed."),
            AppError::Restore { what, why } => write!(f, "{what} saved at your last visit could not be read ({why})."),
            AppError::Try(e) => write!(f, "Could not classify {e}"),
            AppError::Camera(e) => write!(f, "{e}"),
            AppError::Move(e) => write!(f, "Could not move the image: {e}."),
            AppError::ProjectSave(e) => write!(f, "Could not save the project: {e}"),
            AppError::ProjectOpen { file, why } => {
                write!(f, "Could not open {file}: {why}. Nothing was changed.")
            }
        }
    }
}
