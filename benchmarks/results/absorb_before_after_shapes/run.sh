#!/bin/bash
# lift_jax absorb of the sample (smollm2_135m, method lift), empty XLA cache each, before/after interleaved
out=/tmp/ab/ab2
for run in before1 after1 before2 after2; do
  side=${run%?}
  if [ $side = after ]; then dir=/work/main; pp=; else dir=/tmp/old; pp=/tmp/old; fi
  rm -rf $out/$run $out/xc
  cd $dir
  echo "$run start $(date -u +%FT%TZ) load $(cut -d' ' -f1-3 /proc/loadavg) commit $(git rev-parse --short HEAD)" >> $out/log.txt
  start=$(date +%s.%N)
  PYTHONPATH=$pp LIFT_JAX_COMPILATION_CACHE=$out/xc /work/main/.venv/bin/python -m lift_jax.absorb --config smollm2_135m \
    --config.method=lift --config.document=lift_jax/assets/sample_document.txt --config.output_dir=$out/$run \
    --config.ask.measure_first_token=false > $out/$run.log 2>&1; rc=$?
  end=$(date +%s.%N)
  echo "$run rc=$rc wall=$(echo "$end - $start" | bc)" >> $out/log.txt
done
