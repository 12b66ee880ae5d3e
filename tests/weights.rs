//! The loader names the tensor and the problem for a bad weights file.

use ajuste::model::{WeightsError, load_efficientnet};
use burn::tensor::Device;
use safetensors::tensor::{Dtype, TensorView};

const SHIPPED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/public/models/efficientnet_lite0.safetensors"
);

/// The shipped file rewritten with `edit` applied to its tensor list.
fn rewrite(edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>)) -> Vec<u8> {
    let bytes = std::fs::read(SHIPPED).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec()))
        .collect();
    edit(&mut tensors);
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect();
    safetensors::serialize(views, None).unwrap()
}

fn load(bytes: &[u8]) -> WeightsError {
    load_efficientnet(bytes, &Device::flex()).expect_err("must fail")
}

#[test]
fn truncated_file() {
    let bytes = std::fs::read(SHIPPED).unwrap();
    let err = load(&bytes[..bytes.len() - 1000]);
    assert!(matches!(err, WeightsError::Invalid(_)), "{err}");
    assert!(err.to_string().contains("truncated"));
    assert!(matches!(load(&bytes[..4]), WeightsError::Invalid(_)));
}

#[test]
fn missing_tensor_is_named() {
    let bytes = rewrite(|t| t.retain(|(n, ..)| n != "blocks.7.dw.bn.running_var"));
    let err = load(&bytes);
    assert_eq!(err, WeightsError::Missing("blocks.7.dw.bn.running_var".into()));
    assert!(err.to_string().contains("blocks.7.dw.bn.running_var"));
}

#[test]
fn wrong_shape_is_named_with_both_shapes() {
    let bytes = rewrite(|t| {
        let e = t.iter_mut().find(|(n, ..)| n == "head.conv.weight").unwrap();
        e.2 = vec![1280, 160, 2, 1];
    });
    let err = load(&bytes);
    assert!(
        matches!(&err, WeightsError::Shape { name, .. } if name == "head.conv.weight"),
        "{err}"
    );
    assert!(err.to_string().contains("[1280, 320, 1, 1]"), "{err}");
}

#[test]
fn wrong_dtype_is_named() {
    let bytes = rewrite(|t| {
        let e = t.iter_mut().find(|(n, ..)| n == "stem.bn.weight").unwrap();
        e.1 = Dtype::I32;
    });
    let err = load(&bytes);
    assert!(
        matches!(&err, WeightsError::Dtype { name, .. } if name == "stem.bn.weight"),
        "{err}"
    );
}
