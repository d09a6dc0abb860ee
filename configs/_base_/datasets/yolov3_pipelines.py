# YOLOv3 train/test pipelines at a square input_size (mmdet's YOLOv3 augmentation), and the
# loader settings the dataset configs share (8 images per GPU).
# input_size is the one resolution setting: every (input_size, input_size) below follows a
# --cfg-options input_size=N override (netaug_det.utils.config.apply_input_size).
input_size = 416
backend_args = None

# Images are letterboxed: the longer side is resized to input_size, then padded to a square.
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    # mean and to_rgb as in the model's data_preprocessor
    dict(type='Expand', mean=[123.675, 116.28, 103.53], to_rgb=True, ratio_range=(1, 2)),
    dict(type='MinIoURandomCrop', min_ious=(0.4, 0.5, 0.6, 0.7, 0.8, 0.9), min_crop_size=0.3),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PhotoMetricDistortion'),
    dict(type='Pad', size=(input_size, input_size), pad_val=dict(img=(114, 114, 114))),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(input_size, input_size), keep_ratio=True),
    dict(type='Pad', size=(input_size, input_size), pad_val=dict(img=(114, 114, 114))),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(
        type='PackDetInputs',
        meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]

train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=8,
    num_workers=4,
    persistent_workers=True,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False))
test_dataloader = val_dataloader

# Test-time augmentation (mmdet's tools/test.py --tta): each image and its horizontal mirror,
# boxes merged by NMS as in the model's test_cfg. The mirror is taken of the original image,
# before letterboxing: DetTTAModel flips the predicted boxes back in the original image's frame,
# so a flip after Pad (mmdet's default TTA pipeline) would mirror the padding in and put every
# box of a non-square image off its object.
tta_model = dict(
    type='DetTTAModel',
    tta_cfg=dict(nms=dict(type='nms', iou_threshold=0.45), max_per_img=100))
tta_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(
        type='TestTimeAug',
        transforms=[
            [dict(type='RandomFlip', prob=1.), dict(type='RandomFlip', prob=0.)],
            [dict(type='Resize', scale=(input_size, input_size), keep_ratio=True)],
            [dict(type='Pad', size=(input_size, input_size), pad_val=dict(img=(114, 114, 114)))],
            [dict(type='LoadAnnotations', with_bbox=True)],
            [dict(type='PackDetInputs',
                  meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                             'flip', 'flip_direction'))],
        ])
]
