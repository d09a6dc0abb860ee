# configs/demo/mbv2_cls_demo.py on the out-of-domain classification data of the transfer
# experiment (docs/transfer.md): 12 classes of other objects and texture families, none of them
# the detection demo's (python -m netaug_det.tools.make_ood_imagefolder writes
# data/transfer_cls/). Same model, input, batch and schedule; only the data and the head differ.
_base_ = '../demo/mbv2_cls_demo.py'

data_root = 'data/transfer_cls/'
# netaug_det/datasets/ood_imagefolder.py: OOD_CLASSES (disjoint from the demo's six shapes)
metainfo = dict(classes=('arrow', 'crescent', 'heart', 'lightning', 'spiral', 'dumbbell',
                         'waves', 'bricks', 'hexcells', 'scribbles', 'speckles', 'concentric'))
model = dict(head=dict(num_classes=12))
train_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
val_dataloader = dict(dataset=dict(data_root=data_root, metainfo=metainfo))
test_dataloader = val_dataloader
