//! What an ingest did: images added and skipped, files refused, remarks.

/// One refused or doubtful input, shown to the user as "{file}: {problem}".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub file: String,
    pub problem: String,
}

impl FileError {
    pub fn new(file: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            problem: problem.into(),
        }
    }
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file, self.problem)
    }
}

impl std::error::Error for FileError {}

/// What one ingest call did: images added, files refused (errors), images skipped as already loaded
/// (`skipped`, each with a warning) and remarks on what was accepted (warnings: renamed, in two classes, nested
/// folders).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub added: usize,
    /// Images left out because the very same image is already in the class.
    pub skipped: usize,
    pub errors: Vec<FileError>,
    pub warnings: Vec<FileError>,
}

impl IngestReport {
    pub fn merge(&mut self, other: IngestReport) {
        self.added += other.added;
        self.skipped += other.skipped;
        self.errors.extend(other.errors);
        self.warnings.extend(other.warnings);
    }
}
