#!/bin/sh
# SPDX-License-Identifier: MIT
# One line about the machine a benchmark ran on.
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
echo "machine: $cpu, $(nproc --all) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr), $(date -u +%Y-%m-%dT%H:%MZ)"
