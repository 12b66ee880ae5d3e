//! What augmentation does to the training images of the deeper modes (the transforms are `train::augment`).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AugmentOptions {
    /// false: images pass through unchanged.
    pub enabled: bool,
    /// Area of the random crop as a share of the image, `[min, max]`.
    pub crop_scale: [f32; 2],
    /// Aspect ratio (width / height) of the random crop, `[min, max]`, drawn log-uniformly.
    pub crop_aspect: [f32; 2],
    /// Largest rotation either way, in degrees.
    pub rotation_degrees: f32,
    /// Brightness factor drawn in `1 ± brightness`.
    pub brightness: f32,
    /// Contrast factor drawn in `1 ± contrast` (blend with the image's mean grey, as torchvision does).
    pub contrast: f32,
    /// Mirror half of the images left–right. Off by default: letters, digits and text must not flip.
    pub horizontal_flip: bool,
    /// The preset the crop, rotation and jitter above were set from (the form's choice; recorded in the export).
    pub strength: Strength,
    /// Fixed augmented views per training image, each run through the frozen prefix once and cycled across
    /// epochs (the deep trainer's bank); 0: a new view every epoch, at the cost of the prefix each time.
    pub views: usize,
}

/// How far augmentation moves the images: crop area, rotation, brightness and contrast together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strength {
    /// Crop 85–100 % of the area, ±5°, brightness and contrast ±0.1.
    Light,
    /// Issue 8's reference recipe: crop 70–100 %, ±10°, ±0.2.
    #[default]
    Medium,
    /// Crop 50–100 %, ±20°, ±0.3.
    Strong,
}

impl Strength {
    pub const ALL: [Strength; 3] = [Self::Light, Self::Medium, Self::Strong];

    /// The name the form and the export use.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Light => "light",
            Self::Medium => "medium",
            Self::Strong => "strong",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Minimum crop area, rotation in degrees, and brightness/contrast jitter.
    fn values(&self) -> (f32, f32, f32) {
        match self {
            Self::Light => (0.85, 5.0, 0.1),
            Self::Medium => (0.7, 10.0, 0.2),
            Self::Strong => (0.5, 20.0, 0.3),
        }
    }
}

impl Default for AugmentOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            crop_scale: [0.7, 1.0],
            crop_aspect: [3.0 / 4.0, 4.0 / 3.0],
            rotation_degrees: 10.0,
            brightness: 0.2,
            contrast: 0.2,
            horizontal_flip: false,
            strength: Strength::Medium,
            views: 8,
        }
    }
}

impl AugmentOptions {
    /// These options with the crop, rotation and jitter of `strength` (flip and the rest kept).
    pub fn with_strength(self, strength: Strength) -> Self {
        let (crop, rotation, jitter) = strength.values();
        Self {
            crop_scale: [crop, 1.0],
            rotation_degrees: rotation,
            brightness: jitter,
            contrast: jitter,
            strength,
            ..self
        }
    }

    /// Every out-of-range option, as messages a user can act on.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        let [s0, s1] = self.crop_scale;
        if !(s0 > 0.0 && s0 <= s1 && s1 <= 1.0) {
            problems.push(format!("crop scale must satisfy 0 < min ≤ max ≤ 1 (got {s0}–{s1})"));
        }
        let [a0, a1] = self.crop_aspect;
        if !(a0 > 0.0 && a0 <= a1 && a1.is_finite()) {
            problems.push(format!("crop aspect must satisfy 0 < min ≤ max (got {a0}–{a1})"));
        }
        if !(0.0..=180.0).contains(&self.rotation_degrees) {
            problems.push(format!(
                "rotation must be between 0 and 180 degrees (got {})",
                self.rotation_degrees
            ));
        }
        if self.views > 64 {
            problems.push(format!(
                "augmented views per image must be at most 64 (got {})",
                self.views
            ));
        }
        for (what, v) in [("brightness", self.brightness), ("contrast", self.contrast)] {
            if !(0.0..=1.0).contains(&v) {
                problems.push(format!("{what} jitter must be between 0 and 1 (got {v})"));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}
