//! How a trained model's accuracy is quoted (issue 11): on which images it rests, and a warning when those are
//! too few to trust, or are the training images themselves (a validation fraction of 0).

/// Fewest held-out images an accuracy is quoted on without a warning: with 20, one image moves it 5 points.
pub const MIN_VALIDATION_IMAGES: usize = 20;

/// The kept model's accuracy in words, with the number of images it rests on.
pub fn accuracy_summary(accuracy: f32, num_train: usize, num_val: usize) -> String {
    let percent = accuracy * 100.0;
    if num_val == 0 {
        return format!(
            "no held-out images: {percent:.1}% is the accuracy on the {num_train} training \
             images it learned from, which says nothing about new images"
        );
    }
    let images = if num_val == 1 { "image" } else { "images" };
    if num_val < MIN_VALIDATION_IMAGES {
        format!(
            "validation accuracy {percent:.1}% on only {num_val} held-out {images}: too few to trust (one image \
             moves it {:.0} points); at least {MIN_VALIDATION_IMAGES} are needed for a figure worth quoting",
            100.0 / num_val as f32
        )
    } else {
        format!("validation accuracy {percent:.1}% on {num_val} held-out {images}")
    }
}

/// The images the figures rest on, counted: the share the stratified split really held out (each class rounds
/// its own share, so 20 % asked of 12 images can be 2, 16.7 %), or that none was held out.
pub fn held_out_summary(num_train: usize, num_val: usize) -> String {
    if num_val == 0 {
        return format!("no images held out: every figure is on the {num_train} training images");
    }
    let total = num_train + num_val;
    format!(
        "{num_val} of {total} images held out ({:.1}%)",
        num_val as f32 * 100.0 / total as f32
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_the_accuracy_rests_on() {
        let none = accuracy_summary(1.0, 4, 0);
        assert!(none.contains("no held-out") && none.contains("4 training images") && !none.contains("validation acc"));
        let few = accuracy_summary(1.0, 2, 2);
        assert!(
            few.contains("100.0%") && few.contains("only 2 held-out images") && few.contains("50 points"),
            "{few}"
        );
        let enough = accuracy_summary(0.925, 160, 40);
        assert_eq!(enough, "validation accuracy 92.5% on 40 held-out images");
    }

    #[test]
    fn says_how_many_images_were_held_out() {
        assert_eq!(held_out_summary(10, 2), "2 of 12 images held out (16.7%)");
        let none = held_out_summary(12, 0);
        assert!(
            none.contains("no images held out") && none.contains("12 training images"),
            "{none}"
        );
    }
}
