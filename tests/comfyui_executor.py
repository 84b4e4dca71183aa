"""Run API workflows through a real ComfyUI's own validation and executor, in this process.

    python tests/comfyui_executor.py COMFYUI_DIR PACK_DIR WORK_DIR REQUEST.json

``tests/test_workflows_in_comfyui.py`` starts it in a fresh Python (ComfyUI's top-level modules,
``nodes``, ``utils``, ``folder_paths``..., must not leak into the test process). It imports ComfyUI in CPU
mode as ``main.py --cpu`` does, with its input, output, temp and user folders under WORK_DIR (the
checkout is read-only), loads the core nodes the templates use (``nodes.py`` and
``comfy_extras/nodes_preview_any.py``), loads the pack with ComfyUI's own ``load_custom_node``, adds
WORK_DIR/models/dabfusion to the ``dabfusion`` model folder, then for each prompt of REQUEST
(``{"prompts": {name: api_graph}}``) runs ``execution.validate_prompt`` and ``PromptExecutor.execute``
and prints one JSON line: per prompt, the validation verdict, the executor's success, the messages it
would have sent to the browser (an ``execution_error``'s message and type) and the UI outputs.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid


class Server:
    """What PromptExecutor and ComfyUI's progress handler ask of the web server: a client id, a
    last node id, send_sync (messages are kept, not sent) and the sockets' metadata."""

    def __init__(self) -> None:
        self.client_id = None
        self.last_node_id = None
        self.sockets_metadata: dict = {}
        self.messages: list = []

    def send_sync(self, event, data, sid=None) -> None:
        self.messages.append((event, data))

    def queue_updated(self) -> None:
        pass


def main(comfy: str, pack: str, work: str, request: str) -> int:
    sys.path.insert(0, comfy)
    from comfy.cli_args import args

    args.cpu = True
    import folder_paths

    for kind in ("input", "output", "temp", "user"):
        os.makedirs(os.path.join(work, kind), exist_ok=True)
    folder_paths.set_input_directory(os.path.join(work, "input"))
    folder_paths.set_output_directory(os.path.join(work, "output"))
    folder_paths.set_temp_directory(os.path.join(work, "temp"))
    folder_paths.set_user_directory(os.path.join(work, "user"))
    import execution
    import nodes

    async def load() -> bool:
        await nodes.load_custom_node(os.path.join(comfy, "comfy_extras", "nodes_preview_any.py"),
                                     module_parent="comfy_extras")
        return await nodes.load_custom_node(pack)

    if not asyncio.run(load()):
        print(json.dumps({"import_failed": pack}))
        return 1
    folder_paths.add_model_folder_path("dabfusion", os.path.join(work, "models", "dabfusion"))
    with open(request, encoding="utf-8") as f:
        prompts = json.load(f)["prompts"]
    server = Server()
    executor = execution.PromptExecutor(server)
    report = {}
    for name, prompt in prompts.items():
        prompt_id = str(uuid.uuid4())
        valid = asyncio.run(execution.validate_prompt(prompt_id, prompt, None))
        entry = {"valid": bool(valid[0]), "error": valid[1], "node_errors": valid[3]}
        if valid[0]:
            server.messages = []
            executor.execute(prompt, prompt_id, {"extra_pnginfo": {"workflow": {"name": name}}}, valid[2])
            errors = [data for event, data in executor.status_messages if event == "execution_error"]
            entry.update(success=executor.success, outputs=executor.history_result["outputs"],
                         errors=[{k: e.get(k) for k in ("node_id", "node_type", "exception_type", "exception_message")}
                                 for e in errors])
        report[name] = entry
    print("RESULT " + json.dumps(report, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:5]))
