//! The backends the model can run on. Shared by the page (built without burn: it only names them) and the
//! training worker (`src/worker.rs`, which builds the burn device for one).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    WebGpu,
    Cpu,
}
