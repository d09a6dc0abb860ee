"""The package's import graph: no circle, and no module imports one of a higher floor.

Floors, bottom up: ``utils``, ``registry`` and ``version`` (base helpers), ``datasets``, ``models``, then
``analysis``, ``deployment`` and ``engine`` (they use the models), ``experiments`` (runs of the
tools), ``tools`` (command lines) and the package itself (importing it registers every module). The
NetAug core (``models.netaug``) imports nothing of the distillation code above it. Every
``import`` counts, those inside functions too.
"""
import ast
import os.path as osp
from pathlib import Path
from typing import Dict, Set

import netaug_det

PACKAGE_DIR = Path(osp.dirname(netaug_det.__file__))
FLOORS = {'version': 0, 'registry': 0, 'utils': 0, 'datasets': 1, 'models': 2, 'analysis': 3,
          'deployment': 3, 'engine': 3, 'experiments': 4, 'tools': 5}


def module_name(path: Path) -> str:
    parts = ('netaug_det', ) + path.relative_to(PACKAGE_DIR).with_suffix('').parts
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)


def import_graph() -> Dict[str, Set[str]]:
    """Every netaug_det module and the netaug_det modules it imports."""
    paths = {module_name(path): path for path in PACKAGE_DIR.rglob('*.py')}
    graph = {}
    for name, path in paths.items():
        package = name if path.name == '__init__.py' else name.rpartition('.')[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ''
                if node.level:
                    anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                    base = '.'.join(anchor + ([base] if base else []))
                for alias in node.names:  # `from pkg import module` imports the module
                    submodule = f'{base}.{alias.name}'
                    targets.add(submodule if submodule in paths else base)
        graph[name] = {target for target in targets if target in paths and target != name}
    return graph


def floor(module: str) -> int:
    parts = module.split('.')
    return FLOORS[parts[1]] if len(parts) > 1 else FLOORS['tools']


def test_the_graph_is_read():
    graph = import_graph()
    assert 'netaug_det.models.builders' in graph['netaug_det.analysis.complexity']
    assert 'netaug_det.models.netaug' in graph['netaug_det.engine.hooks.netaug_hook']


def test_no_module_imports_a_higher_floor():
    upward = sorted(f'{source} -> {target}' for source, targets in import_graph().items()
                    for target in targets if floor(target) > floor(source))
    assert not upward


def test_the_netaug_core_does_not_import_distillation():
    graph = import_graph()
    core = [name for name in graph if name.startswith('netaug_det.models.netaug')]
    assert core
    assert not [(name, target) for name in core for target in graph[name]
                if target.startswith(('netaug_det.models.distillation',
                                      'netaug_det.models.losses'))]


def test_no_import_circle():
    graph = import_graph()
    state: Dict[str, int] = {}  # 1: on the current path, 2: done
    circles = []

    def visit(node: str, path: list) -> None:
        state[node] = 1
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                circles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target, path + [target])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not circles, '\n'.join(' -> '.join(circle) for circle in circles)
