# Pascal VOC 2007+2012 trainval -> VOC 2007 test (data/VOCdevkit/VOC2007, VOC2012), 8 images
# per GPU; AP50 from VOCMetric (IoU 0.5, 11-point AP as for VOC 2007).
_base_ = './yolov3_pipelines.py'

dataset_type = 'VOCDataset'
data_root = 'data/VOCdevkit/'
train_dataloader = dict(
    dataset=dict(
        type='ConcatDataset',
        # VOCDataset adds dataset_type to its metainfo, which differs between 2007 and 2012
        ignore_keys=['dataset_type'],
        datasets=[
            dict(
                type=dataset_type,
                data_root=data_root,
                ann_file=f'VOC{year}/ImageSets/Main/trainval.txt',
                data_prefix=dict(sub_data_root=f'VOC{year}/'),
                filter_cfg=dict(filter_empty_gt=True, min_size=32, bbox_min_size=32),
                pipeline=_base_.train_pipeline,
                backend_args=_base_.backend_args) for year in (2007, 2012)
        ]))
val_dataloader = dict(
    dataset=dict(
        type=dataset_type,
        data_root=data_root,
        ann_file='VOC2007/ImageSets/Main/test.txt',
        data_prefix=dict(sub_data_root='VOC2007/'),
        test_mode=True,
        pipeline=_base_.test_pipeline,
        backend_args=_base_.backend_args))
test_dataloader = val_dataloader

val_evaluator = dict(type='VOCMetric', metric='mAP', eval_mode='11points')
test_evaluator = val_evaluator
