# Distils a model's transformer blocks in parallel, one make target per
# range of blocks, then assembles the .zq: each range is a separate
# `zquant lkd --work` process (same machine with make -j N, or other hosts
# sharing the work directory's filesystem), and the output is byte for byte
# what one serial `zquant lkd` run writes with the same options.
#
#   make -f scripts/lkd-parallel.mk -j2 MODEL=data/models/stories260K \
#        OUT=model.zq RANGES="0-2 3-4" LKD_OPTS="-p w4/8a8 --steps 100"
#
# MODEL     the FP model folder (spelled the same for every target)
# OUT       the .zq to write (or OUT.gguf: quantized --for llama.cpp and exported)
# RANGES    block ranges, one process each (e.g. "0-5 6-11"; ranges may overlap:
#           a block's lock keeps two processes from distilling it twice)
# LKD_OPTS  every option but -o, --work and --layers, the same for all targets
# WORK      the shared work directory (default OUT.work); kept afterwards, so a
#           rerun after a failure distils only what is missing
#
# Blocks distilled apart see the FP model's activations (--input fp, given
# last, over whatever LKD_OPTS says): with lkd's default, the quantized
# prefix's, block k would wait for blocks 0..k-1 (MPI ranks are the parallel
# form of that default: they share each batch instead).
# Each process computes the FP model's activations through the blocks before
# its range itself (one forward pass of those blocks over the data batches),
# which costs far less than distilling them (--steps forward and backward
# passes per block).
ZQUANT ?= zquant
RANGES ?= all
WORK ?= $(OUT).work

ifndef MODEL
$(error MODEL is not set: the FP model folder)
endif
ifndef OUT
$(error OUT is not set: the .zq file to write)
endif

$(OUT): $(RANGES:%=$(WORK)/%.done)
	$(ZQUANT) lkd $(MODEL) --work $(WORK) -o $@ $(LKD_OPTS) --input fp --force

$(WORK)/%.done:
	@mkdir -p $(WORK)
	$(ZQUANT) lkd $(MODEL) --work $(WORK) --layers $* $(LKD_OPTS) --input fp --quiet
	@touch $@
