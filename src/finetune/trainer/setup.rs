//! Setting a deep run up: the trainable tail and classifier, the optimizers, the activation cache and what it
//! holds (the validation images, then the augmentation bank's views, as far as its capacity goes).

use std::collections::HashMap;

use burn::module::Module;

use super::{DeepTrainer, State, bank, checkpoint, rounds};
use crate::finetune::cache::{self, ActivationCache};
use crate::finetune::optim::{AdamW, FlatAdamW};
use crate::finetune::step::{Augment, TrainData, check_data};
use crate::finetune::tail::{Tail, classifier_from_head};
use crate::head::Head;
use crate::head::epoch_log::EpochLog;
use crate::model::{EMBEDDING_DIM, EfficientNetLite0};
use crate::options::{FinetuneMode, TrainOptions};
use crate::rng::Rng;

impl DeepTrainer {
    /// `base`: the pretrained backbone on the plain device the training runs on (its classifier is ignored);
    /// `options.finetune` a deep mode (or Auto: its LoRA run); `augment` the training images' transform
    /// (`options.deep.augment.transform()`, or a test's own).
    pub fn new(
        base: &EfficientNetLite0,
        data: TrainData,
        options: TrainOptions,
        augment: Option<Augment>,
    ) -> Result<Self, String> {
        let cut = options.deep_mode().map_or(0, |mode| mode.cut());
        let cache = ActivationCache::new(cut, options.deep.cache_bytes);
        Self::with_cache(base, data, options, augment, cache)
    }

    /// [`DeepTrainer::new`] keeping the activations at the cut in `cache` (made for this mode's cut: its capacity
    /// decides what is cached, as `options.deep.cache_bytes` does in memory).
    pub fn with_cache(
        base: &EfficientNetLite0,
        data: TrainData,
        options: TrainOptions,
        augment: Option<Augment>,
        mut cache: ActivationCache,
    ) -> Result<Self, String> {
        options.validate()?;
        let mode = options
            .deep_mode()
            .ok_or("the deep trainer needs a deep mode (last blocks, LoRA or Auto), not head only")?;
        if cache.shape() != cache::cut_shape(mode.cut()) {
            return Err("the activation cache was made for another cut".into());
        }
        check_data(&data)?;
        let fingerprint = checkpoint::fingerprint(&data);
        let mut data = data;
        let val_images = data.val.len();
        data.val = rounds::validation_subset(&data.val);
        let device = base.head.weight.device().inner();
        let autodiff = device.clone().autodiff();
        let mut rng = Rng::new(options.seed);
        let head = Head::new(EMBEDDING_DIM, data.num_classes, 0, 0.0, &mut rng);
        let tail = Tail::new(base, mode, &mut rng);
        let trainable_params = match mode {
            FinetuneMode::LastBlocks { .. } => tail.num_params(),
            FinetuneMode::Lora { .. } => {
                let adapters = tail.blocks.iter().flat_map(|b| [&b.expand_lora, &b.project_lora]);
                adapters
                    .chain([&tail.head_lora])
                    .flatten()
                    .map(|l| l.num_params())
                    .sum()
            }
        } + EMBEDDING_DIM * data.num_classes
            + data.num_classes;
        let tail = tail.train();
        let classifier = classifier_from_head(&head, &device).train();
        let adamw = AdamW::new(options.deep.weight_decay);
        let views = bank::bank_views(
            &options,
            augment.is_some(),
            data.train.len(),
            data.val.len(),
            cache.capacity(),
        );
        let mut queue: Vec<(usize, usize)> = data.val.iter().map(|&i| (i, 0)).collect();
        if augment.is_none() {
            queue.extend(data.train.iter().map(|&i| (i, 0)));
        }
        for view in 1..=views {
            queue.extend(data.train.iter().map(|&i| (i, view)));
        }
        queue.truncate(cache.capacity());
        cache.reserve(queue.len())?;
        let rounds = rounds::rounds_per_pass(data.train.len(), rounds::ROUND_IMAGES);
        // Nothing to cache (no budget, or augmentation without a bank or validation): training starts at once.
        let state = if queue.is_empty() {
            State::Done
        } else {
            State::Caching { queue, next: 0 }
        };
        let log = EpochLog::new(options.epochs * rounds, options.patience).counting(rounds::unit(rounds));
        let mut trainer = Self {
            base: base.clone(),
            device,
            autodiff,
            total_steps: 0,
            rounds,
            pass_order: Vec::new(),
            val_images,
            round_steps: Vec::new(),
            data,
            options,
            mode,
            tail,
            classifier,
            opt_head: FlatAdamW::new(adamw),
            opt_backbone: FlatAdamW::new(adamw),
            augment,
            epoch_rng: rng.clone(),
            rng,
            fingerprint,
            cache,
            views,
            state,
            step_count: 0,
            threads: 1,
            parts: 1,
            trainable_params,
            loaded: HashMap::new(),
            log,
        };
        trainer.total_steps = trainer.steps_through(trainer.log.epochs());
        if matches!(trainer.state, State::Done) {
            trainer.state = trainer.start_epoch();
        }
        Ok(trainer)
    }
}
