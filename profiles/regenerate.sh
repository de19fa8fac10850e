#!/usr/bin/env bash
# Regenerates every shipped profile: measured ones on this machine's CPU, then derived ones
# for the datasheet devices in simulator/profiling/datasheets.json. Run from the repository root with
# the package installed. Measuring takes several minutes on a 2-core machine; keep the
# machine otherwise idle so the timings are honest.
# MISSING_ONLY=1 writes only the profiles that do not exist yet (nothing is re-measured), e.g. after
# adding a datasheet device: the existing files stay byte-identical.
set -euo pipefail
THREADS=${THREADS:-$(nproc)}
CPU=${CPU:-epyc-${THREADS}t}
kept() {  # out: true when MISSING_ONLY=1 and the file exists
  [[ ${MISSING_ONLY:-0} == 1 && -e $1 ]]
}
measure() {  # model dataset repeats
  local out="profiles/${CPU}_$1_$2_b32.json"
  kept "$out" || simulate profile --model "$1" --dataset "$2" --batch-size 32 --device cpu --threads "$THREADS" \
    --repeats "$3" --warmup 2 --no-progress --out "$out"
}
derive() {  # device model dataset batch: from the measured batch-32 profile, rescaled to `batch`
  local out="profiles/$1_$2_$3_b$4.json"
  kept "$out" || simulate profile --derive "$1" --from "profiles/${CPU}_$2_$3_b32.json" --batch-size "$4" --out "$out"
}
for model in vgg16 resnet18; do
  for dataset in fashion-mnist cifar10; do measure "$model" "$dataset" 10; done
  measure "$model" tiny-imagenet 3
done
for device in jetson-orin-nano raspberry-pi-4 a100; do  # Fashion-MNIST: these three devices, batch 32
  for model in vgg16 resnet18; do derive "$device" "$model" fashion-mnist 32; done
done
# Every datasheet device (a scenario names one as profiles/<device>_<model>_<dataset>_b<batch>.json):
# edge GPUs, edge CPUs, then cloud GPUs.
for device in jetson-nano jetson-xavier-nx jetson-agx-orin jetson-orin-nano phone-soc raspberry-pi-5 raspberry-pi-4 \
              v100 a100 h100; do
  for model in vgg16 resnet18; do
    for dataset in cifar10 tiny-imagenet; do
      for batch in 32 128; do derive "$device" "$model" "$dataset" "$batch"; done
    done
  done
done
# Camera frames (scenarios/camera_224.yaml): torchvision's MobileNetV2, ResNet-18 and ResNet-50 at
# 224x224 on CIFAR-10's 10 classes, measured here, derived for every datasheet device at batch 32.
for model in mobilenet_v2 torchvision.models:resnet18 resnet50; do
  slug=${model/:/.}
  out="profiles/${CPU}_${slug}_cifar10_224px_b32.json"
  kept "$out" || simulate profile --model "$model" --dataset cifar10 --input-size 224 --batch-size 32 --device cpu \
    --threads "$THREADS" --repeats 10 --warmup 2 --no-progress --out "$out"
  for device in jetson-nano jetson-xavier-nx jetson-agx-orin jetson-orin-nano phone-soc raspberry-pi-5 raspberry-pi-4 \
                v100 a100 h100; do
    kept "profiles/${device}_${slug}_cifar10_224px_b32.json" ||
      simulate profile --derive "$device" --from "$out" --out "profiles/${device}_${slug}_cifar10_224px_b32.json"
  done
done
# Real two-process runs (scenarios/emulate_fashion_mnist.yaml): VGG-16 at width 0.25, one thread,
# the thread count of each emulation worker. Its part steps are not shipped: every `simulate emulate`
# measures them on the machine it runs on (README, "Real runs").
kept profiles/epyc-1t_vgg16_fashion-mnist_w0.25_b32.json ||
  simulate profile --model vgg16 --dataset fashion-mnist --batch-size 32 --device cpu --threads 1 --width 0.25 \
    --repeats 20 --warmup 3 --no-progress --out profiles/epyc-1t_vgg16_fashion-mnist_w0.25_b32.json
