"""`taue-server`: serve TAUE on this machine with waitress (Windows, macOS, Linux).

    taue-server                                  # the embedded toy model on http://127.0.0.1:7860
    taue-server --model stabilityai/stable-diffusion-xl-base-1.0 --data-dir ~/taue-jobs
    taue-server --host 0.0.0.0 --token <secret>  # other machines may connect, with the token
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

from .config import ServerConfig

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    from taue_engine import __version__

    parser = argparse.ArgumentParser(prog="taue-server", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"taue-server {__version__}")
    parser.add_argument("--model", default="toy", metavar="M",
                        help="hub id, diffusers folder, .safetensors file, toy or tiny-random, or a name from "
                             "--models-dir (default: toy); with --queue, the model of jobs that name none when a "
                             "worker serves it")
    parser.add_argument("--vae", default=None, metavar="PATH_OR_ID",
                        help="a VAE in place of the model's own: diffusers VAE folder, .safetensors file or hub id "
                             "(madebyollin/sdxl-vae-fp16-fix: SDXL's VAE fixed for float16)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default 7860)")
    parser.add_argument("--data-dir", default="taue-server-data", metavar="DIR",
                        help="where jobs and their results are kept (default: ./taue-server-data)")
    parser.add_argument("--token", default=None, help="require 'Authorization: Bearer TOKEN' (needed off loopback)")
    parser.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--dtype", default=None, help="float16, bfloat16 or float32")
    parser.add_argument("--max-size", type=int, default=ServerConfig.max_size,
                        help=f"largest width/height a job may ask for (default {ServerConfig.max_size})")
    parser.add_argument("--lora-dir", default=None, metavar="DIR",
                        help="folder of LoRA .safetensors files that jobs may name (loras: [{name, scale}])")
    parser.add_argument("--models-dir", default=None, metavar="DIR",
                        help="folder of SDXL diffusers folders and .safetensors checkpoints that jobs may name "
                             "(model: the folder name or file stem); one is resident at a time, --model the first")
    parser.add_argument("--queue", default=None, metavar="URL",
                        help="put jobs on the Redis queue at URL (redis://[:PASSWORD@]HOST:PORT/DB) for taue-workers "
                             "instead of running them here")
    parser.add_argument("--preview-seconds", type=float, default=ServerConfig.preview_seconds, metavar="S",
                        help="make a running job's preview at most every S seconds (default "
                             f"{ServerConfig.preview_seconds:g}; 0: every step)")
    parser.add_argument("--no-previews", action="store_true", help="make no previews (GET .../preview.png: 404)")
    parser.add_argument("--threads", type=int, default=8, help="HTTP threads (the model runs on one worker)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from taue_engine.quiet import quiet_libraries

    quiet_libraries()  # the log holds the server's lines, not the libraries' warnings and loading bars
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from taue_engine.models.loading import ModelLoadError, check_model_exists, check_vae_exists

    if args.queue:
        from .queue_engine import missing_libraries

        missing = missing_libraries("taue-server")
        if missing:
            print(missing, file=sys.stderr)
            return EXIT_USAGE
    try:
        config = ServerConfig(data_dir=Path(args.data_dir), model=args.model, host=args.host, port=args.port,
                              token=args.token, device=args.device, dtype=args.dtype, max_size=args.max_size,
                              vae=args.vae, lora_dir=args.lora_dir, models_dir=args.models_dir,
                              preview_seconds=None if args.no_previews else args.preview_seconds,
                              queue=args.queue)
        if not config.queue:  # behind a queue the workers load the models; --model names the default
            check_model_exists(config.model_source())
        if args.vae is not None:
            check_vae_exists(args.vae)
        if args.device is not None:
            from taue_engine.models.loading import check_device

            try:
                check_device(args.device)
            except ValueError as error:
                raise ValueError(f"--device: {error}") from None
    except (ModelLoadError, ValueError) as error:
        print(f"taue-server: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        config.jobs_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        print(f"taue-server: error: --data-dir {args.data_dir}: {error.strerror}", file=sys.stderr)
        return EXIT_USAGE

    from .serve import build_server

    try:
        app, server = build_server(config, threads=args.threads)
    except OSError as error:
        print(f"taue-server: error: cannot listen on {args.host}:{args.port}: {error.strerror} (is another server "
              f"running there? choose another --port)", file=sys.stderr)
        return EXIT_USAGE
    engine = app.extensions["taue"]["engine"]
    if config.queue:
        print(f"taue-server: jobs go to taue-workers on {config.queue}; serving http://{args.host}:{args.port}/api/v1 "
              f"(jobs in {config.jobs_dir})", file=sys.stderr)
    else:
        print(f"taue-server: loading {args.model}; serving http://{args.host}:{args.port}/api/v1 "
              f"(jobs in {config.jobs_dir})", file=sys.stderr)
        _report_loading(engine)
    try:
        server.run()
    except KeyboardInterrupt:  # Ctrl-C: what waitress.serve did too
        pass
    return 0


def _report_loading(engine) -> None:
    """Print when the model is ready, or why it failed, without holding up the server (it answers meanwhile)."""
    import threading

    def watch() -> None:
        started = time.monotonic()
        while engine.state == "loading":
            time.sleep(0.2)
        if engine.state == "ready":
            info = engine.info()
            print(f"taue-server: model ready in {time.monotonic() - started:.1f} s on {info['device']} "
                  f"({info['dtype']})", file=sys.stderr)
        else:
            print(f"taue-server: error: the model failed to load: {engine.error}", file=sys.stderr)

    threading.Thread(target=watch, daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
