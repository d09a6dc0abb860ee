"""NetAug machinery shared by every NetAug-capable module: dynamic layers, the module contract,
block adapters, channel sorting and the supernet (mode owner, auxiliary pass, export)."""
from .adapters import (BLOCK_ADAPTERS, ConvModuleAdapter, DetectionBlockAdapter,
                       InvertedResidualAdapter, YOLOV3HeadAdapter, block_adapter,
                       hidden_channel_permutations, register_adapter)
from .aux_loss import NetAugAuxLoss
from .channels import (ChannelPermutation, importance_order, permute_named_tensors,
                       permute_optimizer_state)
from .dynamic_layers import DynamicBatchNorm2d, DynamicConv2d, DynamicLinear
from .module import NETAUG_MODES, NetAugModule
from .supernet import (NetAugSupernet, deployable_checkpoint, deployable_state_dict,
                       export_plain_model)

__all__ = [
    'NetAugAuxLoss', 'BLOCK_ADAPTERS', 'ConvModuleAdapter', 'DetectionBlockAdapter',
    'InvertedResidualAdapter', 'YOLOV3HeadAdapter', 'block_adapter', 'register_adapter',
    'hidden_channel_permutations', 'ChannelPermutation', 'importance_order',
    'permute_named_tensors', 'permute_optimizer_state', 'DynamicBatchNorm2d', 'DynamicConv2d',
    'DynamicLinear', 'NETAUG_MODES', 'NetAugModule', 'NetAugSupernet', 'deployable_checkpoint',
    'deployable_state_dict', 'export_plain_model'
]
