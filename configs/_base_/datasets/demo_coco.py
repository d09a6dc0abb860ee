# The demo data (tools/misc/make_demo_data.py) in its COCO layout, for detector recipes that read
# COCO (SSDLite, YOLOX): 320 train and 100 val images of 6 classes, AP50 from CocoMetric. Demo
# configs inherit their detector's config, this file and ../demo_schedule.py, and build their
# dataloaders from these dicts with their own pipelines (names prefixed demo_ so that they do not
# clash with the recipe's: mmengine refuses a key that two bases define).
demo_root = 'data/demo/'
demo_metainfo = dict(classes=('disc', 'ring', 'triangle', 'square', 'star', 'cross'))
demo_train_set = dict(
    type='CocoDataset',
    data_root=demo_root,
    ann_file='annotations/instances_train.json',
    data_prefix=dict(img='VOCdevkit/VOCdemo/JPEGImages/'),
    metainfo=demo_metainfo,
    filter_cfg=dict(filter_empty_gt=True))
demo_val_set = dict(demo_train_set, ann_file='annotations/instances_val.json', test_mode=True,
                    filter_cfg=None)
demo_evaluator = dict(type='CocoMetric', ann_file=demo_root + 'annotations/instances_val.json',
                      metric='bbox')
