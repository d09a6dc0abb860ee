# yolov3_mbv2_demo.py (YOLOv3 + MobileNetV2-w0.35, 128x128, the demo schedule) on real photographs:
# the NEON tree crowns of the deepforest wheel (PyPI, MIT), 321 train / 92 val tiles of 128x128
# at 10 cm per pixel, one class. Fetch it first (docs/real_data.md):
#     python -m netaug_det.tools.fetch_dataset neon_trees
# What differs from the demo is only what the data needs: its root, its one class, and the COCO
# layout (CocoDataset, AP50 from CocoMetric) that the fetch tool writes. The tiles are 128x128,
# the demo's input size, so the pipelines are the demo's.
_base_ = ['../demo/yolov3_mbv2_demo.py']

data_root = 'data/neon_trees/'
metainfo = dict(classes=('tree', ))
model = dict(bbox_head=dict(num_classes=1))

trees_set = dict(
    _delete_=True,
    type='CocoDataset',
    data_root=data_root,
    data_prefix=dict(img='images/'),
    metainfo=metainfo)
# lr 0.008: the baseline's best point of the learning-rate grid on these trees over 3 seeds (0.004
# to 0.128; 0.032 gave the same mean, the demo's 0.016 7.5 against 8.7; docs/real_data.md)
optim_wrapper = dict(optimizer=dict(lr=0.008))

train_dataloader = dict(dataset=dict(
    trees_set,
    ann_file='annotations/instances_train.json',
    filter_cfg=dict(filter_empty_gt=True),
    pipeline=_base_.train_pipeline))
val_dataloader = dict(dataset=dict(
    trees_set,
    ann_file='annotations/instances_val.json',
    test_mode=True,
    pipeline=_base_.test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(_delete_=True, type='CocoMetric',
                     ann_file=data_root + 'annotations/instances_val.json', metric='bbox')
test_evaluator = val_evaluator
