#!/usr/bin/env bash
# Regenerates every shipped profile: measured ones on this machine's CPU, then derived ones
# for the datasheet devices in simulator/profiling/datasheets.json. Run from the repository root with
# the package installed. Measuring takes several minutes on a 2-core machine; keep the
# machine otherwise idle so the timings are honest.
set -euo pipefail
THREADS=${THREADS:-$(nproc)}
CPU=${CPU:-epyc-${THREADS}t}
measure() {  # model dataset repeats
  simulate profile --model "$1" --dataset "$2" --batch-size 32 --device cpu --threads "$THREADS" \
    --repeats "$3" --warmup 2 --no-progress --out "profiles/${CPU}_$1_$2_b32.json"
}
for model in vgg16 resnet18; do
  for dataset in fashion-mnist cifar10; do measure "$model" "$dataset" 10; done
  measure "$model" tiny-imagenet 3
done
for device in jetson-orin-nano raspberry-pi-4 a100; do
  for measured in profiles/${CPU}_*_b32.json; do
    simulate profile --derive "$device" --from "$measured" --out "profiles/${device}_${measured#profiles/${CPU}_}"
  done
done
# Real two-process runs (scenarios/emulate_fashion_mnist.yaml): VGG-16 at width 0.25, one thread,
# the thread count of each emulation worker. Its part steps are not shipped: every `simulate emulate`
# measures them on the machine it runs on (README, "Real runs").
simulate profile --model vgg16 --dataset fashion-mnist --batch-size 32 --device cpu --threads 1 --width 0.25 \
  --repeats 20 --warmup 3 --no-progress --out profiles/epyc-1t_vgg16_fashion-mnist_w0.25_b32.json
