# ImageNet-1k in torchvision's ImageFolder layout (data/imagenet/{train,val}/<class>/*.JPEG) with
# the official NetAug augmentation (mit-han-lab/tinyml, netaug/setup.py): RandomResizedCrop,
# horizontal flip, ColorJitter(brightness=32/255, saturation=0.5) for training; shorter side to
# ceil(S / 0.875), centre crop S for testing. 128 images per GPU (netaug.yaml base_batch_size).
# --cfg-options data_root=DIR/ moves every split, input_size=S every transform size (multiples
# of 32; netaug_det/utils/config.py).
data_root = 'data/imagenet/'
input_size = 160
batch_size = 128

train_pipeline = [
    dict(type='LoadPILImage'),
    dict(type='TorchVision', transform='RandomResizedCrop', size=(input_size, input_size)),
    dict(type='TorchVision', transform='RandomHorizontalFlip'),
    dict(type='TorchVision', transform='ColorJitter', brightness=32 / 255, saturation=0.5),
    dict(type='PackClsInputs'),
]
test_pipeline = [
    dict(type='LoadPILImage'),
    dict(type='ResizeCenterCrop', size=(input_size, input_size), crop_ratio=0.875),
    dict(type='PackClsInputs'),
]

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=8,
    persistent_workers=True,
    drop_last=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='ImageFolderDataset',
        data_root=data_root,
        data_prefix=dict(img_path='train/'),
        pipeline=train_pipeline))
val_dataloader = dict(
    train_dataloader,
    drop_last=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(train_dataloader['dataset'], data_prefix=dict(img_path='val/'), test_mode=True,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type='TopKAccuracy', topk=(1, 5))
test_evaluator = val_evaluator
