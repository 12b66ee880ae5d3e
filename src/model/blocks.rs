//! The architecture table of EfficientNet-Lite0 (`docs/model.md`), plain data: the model and the weights
//! reader both follow it.

/// One MBConv stage of the architecture table in `docs/model.md`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpec {
    pub kernel: usize,
    pub stride: usize,
    pub expand: usize,
    pub cin: usize,
    pub cout: usize,
    /// Spatial size of the block's input (224x224 image), needed for TF-SAME padding.
    pub size_in: usize,
}

/// TensorFlow "SAME" padding as [top, left, bottom, right]: the extra row/column of a stride-2 conv goes
/// bottom/right, which a symmetric `k/2` padding would get wrong (a 4-point top-1 loss).
pub fn same_padding(size_in: usize, kernel: usize, stride: usize) -> [usize; 4] {
    let out = size_in.div_ceil(stride);
    let total = ((out - 1) * stride + kernel).saturating_sub(size_in);
    let before = total / 2;
    let after = total - before;
    [before, before, after, after]
}

impl BlockSpec {
    pub const fn hidden(&self) -> usize {
        self.cin * self.expand
    }
    pub const fn residual(&self) -> bool {
        self.stride == 1 && self.cin == self.cout
    }
}

const fn b(kernel: usize, stride: usize, expand: usize, cin: usize, cout: usize, size_in: usize) -> BlockSpec {
    BlockSpec {
        kernel,
        stride,
        expand,
        cin,
        cout,
        size_in,
    }
}

/// The 16 MBConv blocks of EfficientNet-Lite0.
pub const BLOCKS: [BlockSpec; 16] = [
    b(3, 1, 1, 32, 16, 112),
    b(3, 2, 6, 16, 24, 112),
    b(3, 1, 6, 24, 24, 56),
    b(5, 2, 6, 24, 40, 56),
    b(5, 1, 6, 40, 40, 28),
    b(3, 2, 6, 40, 80, 28),
    b(3, 1, 6, 80, 80, 14),
    b(3, 1, 6, 80, 80, 14),
    b(5, 1, 6, 80, 112, 14),
    b(5, 1, 6, 112, 112, 14),
    b(5, 1, 6, 112, 112, 14),
    b(5, 2, 6, 112, 192, 14),
    b(5, 1, 6, 192, 192, 7),
    b(5, 1, 6, 192, 192, 7),
    b(5, 1, 6, 192, 192, 7),
    b(3, 1, 6, 192, 320, 7),
];
