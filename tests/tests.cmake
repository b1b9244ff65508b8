# Command-line tests: real models end to end, and every bad file or flag giving a clear
# error (exit status 1..125, a message on stderr), never a crash.
set(FLASHLM_BIN $<TARGET_FILE:flashlm>)
set(EXPECT_ERROR ${CMAKE_SOURCE_DIR}/tests/expect_error.sh)
set(SMOLLM ${CMAKE_SOURCE_DIR}/models/SmolLM2-135M-Instruct.Q4_1.gguf)
set(GEMMA ${CMAKE_SOURCE_DIR}/models/gemma-3-270m-q4_k_m.gguf)
set(BAD_DIR ${CMAKE_BINARY_DIR}/bad_inputs)
set(MINILM ${CMAKE_SOURCE_DIR}/models/all-MiniLM-L6-v2)

function(flashlm_cli_error name regex)
  add_test(NAME cli_error_${name} COMMAND ${EXPECT_ERROR} "${regex}" ${ARGN})
endfunction()

# Bad flags.
flashlm_cli_error(no_command "subcommand" ${FLASHLM_BIN})
flashlm_cli_error(unknown_command "subcommand|unknown|extras|not expected" ${FLASHLM_BIN} fly)
flashlm_cli_error(unknown_flag "bogus" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi --bogus)
flashlm_cli_error(missing_model_flag "model.*required" ${FLASHLM_BIN} run -p hi)
flashlm_cli_error(bad_threads "threads" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi -t -5)
flashlm_cli_error(non_numeric_ctx "ctx-size" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi -c abc)
flashlm_cli_error(ctx_too_big "exceeds the model's training context" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi -c 1000000)
flashlm_cli_error(bad_top_p "top_p|top-p" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi --top-p 7)
flashlm_cli_error(bad_kv_type "unknown KV cache type 'q4_0'" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi --kv-type q4_0)
flashlm_cli_error(bad_backend "unknown backend 'metal'" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi --backend metal)
flashlm_cli_error(mmap_and_no_mmap "excludes" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi --mmap --no-mmap)
# The CUDA backend: built without it, the build says so; built with it (build-cuda in
# scripts/test.sh), the skeleton says its kernels are not there yet.
if(FLASHLM_CUDA)
  flashlm_cli_error(backend_cuda "backend 'cuda': kernels not implemented yet" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi --backend cuda)
else()
  flashlm_cli_error(backend_cuda "backend 'cuda': this build has no CUDA" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi --backend cuda)
endif()
flashlm_cli_error(serve_backend_cuda "backend 'cuda'" ${FLASHLM_BIN} serve -m ${SMOLLM} --port 0 --backend cuda)
flashlm_cli_error(prompt_over_ctx "context" ${FLASHLM_BIN} run -m ${SMOLLM} -c 16 -p "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen")
flashlm_cli_error(missing_text_file "cannot read" ${FLASHLM_BIN} perplexity -m ${SMOLLM} -f /nonexistent/text.txt)

# Bad model files (made at test time from the real model and from /dev/urandom).
add_test(NAME cli_make_bad_inputs COMMAND ${CMAKE_SOURCE_DIR}/tests/make_bad_inputs.sh ${SMOLLM} ${BAD_DIR})
set_tests_properties(cli_make_bad_inputs PROPERTIES FIXTURES_SETUP bad_inputs)
foreach(cmd info run tokenize)
  set(extra "")
  if(NOT cmd STREQUAL "info")
    set(extra -p hi)
  endif()
  flashlm_cli_error(${cmd}_missing_file "cannot open" ${FLASHLM_BIN} ${cmd} -m /nonexistent/model.gguf ${extra})
  flashlm_cli_error(${cmd}_empty_file "not a GGUF file" ${FLASHLM_BIN} ${cmd} -m ${BAD_DIR}/empty.gguf ${extra})
  flashlm_cli_error(${cmd}_random_bytes "not a GGUF file" ${FLASHLM_BIN} ${cmd} -m ${BAD_DIR}/random.gguf ${extra})
  flashlm_cli_error(${cmd}_truncated_header "truncated" ${FLASHLM_BIN} ${cmd} -m ${BAD_DIR}/truncated_header.gguf ${extra})
  flashlm_cli_error(${cmd}_truncated_data "past the end of the file" ${FLASHLM_BIN} ${cmd} -m ${BAD_DIR}/truncated_data.gguf ${extra})
  flashlm_cli_error(${cmd}_directory "not a regular file|holds neither model.safetensors|holds no tokenizer.json" ${FLASHLM_BIN} ${cmd} -m ${BAD_DIR} ${extra})
  set_tests_properties(cli_error_${cmd}_empty_file cli_error_${cmd}_random_bytes cli_error_${cmd}_truncated_header
                       cli_error_${cmd}_truncated_data cli_error_${cmd}_directory PROPERTIES FIXTURES_REQUIRED bad_inputs)
endforeach()
flashlm_cli_error(run_wrong_arch "unsupported architecture 'fakearch'.*supported: llama" ${FLASHLM_BIN} run -m ${BAD_DIR}/wrong_arch.gguf -p hi)
set_tests_properties(cli_error_run_wrong_arch PROPERTIES FIXTURES_REQUIRED bad_inputs)

# Real models end to end.
# Token-level agreement with llama.cpp is checked by test_engine (GenerateGolden); these
# check the commands end to end: text out, timings and peak memory on stderr.
add_test(NAME cli_run_smollm2_chat COMMAND ${FLASHLM_BIN} run -m ${SMOLLM} --chat -p "What is the capital of France?" -n 24 --temp 0)
add_test(NAME cli_run_gemma3_chat COMMAND ${FLASHLM_BIN} run -m ${GEMMA} --chat -p "What is the capital of France?" -n 16 --temp 0)
# The weights mapped (--mmap) or read into huge pages (--no-mmap; the default for a file
# this small) give the same greedy text.
add_test(NAME cli_run_mmap_same_text COMMAND bash -c "a=$($<TARGET_FILE:flashlm> run -m ${SMOLLM} -p 'The capital of France is' -n 8 --temp 0 --mmap 2>/dev/null) && b=$($<TARGET_FILE:flashlm> run -m ${SMOLLM} -p 'The capital of France is' -n 8 --temp 0 --no-mmap 2>/dev/null) && test -n \"$a\" && test \"$a\" = \"$b\" && echo \"same: $a\"")
set_tests_properties(cli_run_mmap_same_text PROPERTIES PASS_REGULAR_EXPRESSION "same: .*[A-Za-z]")
# The reference backend (scalar reference ops) through the whole command.
add_test(NAME cli_run_smollm2_reference_backend COMMAND ${FLASHLM_BIN} run -m ${SMOLLM} --backend reference -p "The capital of France is" -n 4 --temp 0)
set_tests_properties(cli_run_smollm2_reference_backend PROPERTIES
                     PASS_REGULAR_EXPRESSION "[A-Za-z].*generation [0-9]+ tokens.*tokens/s")
set_tests_properties(cli_run_smollm2_chat cli_run_gemma3_chat PROPERTIES
                     PASS_REGULAR_EXPRESSION "[A-Za-z].*generation [0-9]+ tokens.*tokens/s.*peak memory" LABELS slow)
# Interactive chat: two turns on stdin, two answers with timings.
add_test(NAME cli_chat_two_turns COMMAND bash -c "printf 'Hello!\\nTell me a joke.\\n' | $<TARGET_FILE:flashlm> chat -m ${SMOLLM} --temp 0 -n 12 2>&1")
set_tests_properties(cli_chat_two_turns PROPERTIES PASS_REGULAR_EXPRESSION "finish: [a-z]+.*> .*finish: [a-z]+" LABELS slow TIMEOUT 600)
add_test(NAME cli_tokenize_smollm2 COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/check_tokenize.py ${FLASHLM_BIN}
         ${CMAKE_SOURCE_DIR}/tests/golden/tokenizer/smollm2.json ${SMOLLM})
add_test(NAME cli_tokenize_gemma3 COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/check_tokenize.py ${FLASHLM_BIN}
         ${CMAKE_SOURCE_DIR}/tests/golden/tokenizer/gemma3.json ${GEMMA})
set_tests_properties(cli_tokenize_smollm2 cli_tokenize_gemma3 PROPERTIES SKIP_RETURN_CODE 77)
add_test(NAME cli_info_gemma3 COMMAND ${FLASHLM_BIN} info -m ${GEMMA})
set_tests_properties(cli_info_gemma3 PROPERTIES PASS_REGULAR_EXPRESSION "sliding window 512 on 15 of 18 layers")
# safetensors (Hugging Face's package wrote them: scripts/reference/make_safetensors_golden.py):
# a sharded directory listed; a file that is not one refused.
add_test(NAME cli_info_safetensors_sharded COMMAND ${FLASHLM_BIN} info -m ${CMAKE_SOURCE_DIR}/tests/golden/safetensors/sharded --tensors)
set_tests_properties(cli_info_safetensors_sharded PROPERTIES PASS_REGULAR_EXPRESSION
                     "safetensors, 2 files, 7 tensors.*BF16 +2 tensors.*no config.json beside the weights.*model.layers.0.mlp.up_proj.weight +BF16 +\\[3, 5\\]")
# A Hugging Face model directory (models/hf/, made by setup): -m DIR, info, convert.
set(SMOLLM_HF ${CMAKE_SOURCE_DIR}/models/hf/SmolLM2-135M-Instruct)
add_test(NAME cli_info_hf_dir COMMAND ${FLASHLM_BIN} info -m ${SMOLLM_HF})
set_tests_properties(cli_info_hf_dir PROPERTIES PASS_REGULAR_EXPRESSION "LlamaForCausalLM, loads as GGUF architecture 'llama'")
add_test(NAME cli_run_hf_dir_chat COMMAND ${FLASHLM_BIN} run -m ${SMOLLM_HF} --chat -p "What is the capital of France?" -n 12 --temp 0)
set_tests_properties(cli_run_hf_dir_chat PROPERTIES PASS_REGULAR_EXPRESSION "Paris")
add_test(NAME cli_convert_hf_q8_0 COMMAND ${FLASHLM_BIN} convert ${SMOLLM_HF} -o ${CMAKE_BINARY_DIR}/converted-smollm2-q8_0.gguf --type q8_0)
set_tests_properties(cli_convert_hf_q8_0 PROPERTIES PASS_REGULAR_EXPRESSION "convert: wrote .*llama, 272 tensors, q8_0")
flashlm_cli_error(convert_not_a_dir "is not a Hugging Face model directory" ${FLASHLM_BIN} convert ${SMOLLM} -o ${CMAKE_BINARY_DIR}/x.gguf)
flashlm_cli_error(convert_bad_type "unknown --type 'q4_k'" ${FLASHLM_BIN} convert ${SMOLLM_HF} -o ${CMAKE_BINARY_DIR}/x.gguf --type q4_k)
flashlm_cli_error(convert_encoder "architecture 'BertModel' is not supported" ${FLASHLM_BIN} convert ${MINILM} -o ${CMAKE_BINARY_DIR}/x.gguf)
flashlm_cli_error(hf_dir_mmap "Hugging Face directory, converted in memory; --mmap maps files only" ${FLASHLM_BIN} run -m ${SMOLLM_HF} -p hi --mmap)
flashlm_cli_error(convert_untied_without_lm_head "'tie_word_embeddings' is false but there is no 'lm_head.weight'" ${FLASHLM_BIN} convert ${BAD_DIR}/hf_untied -o ${CMAKE_BINARY_DIR}/x.gguf)
flashlm_cli_error(run_hf_spm_tokenizer "only byte-level BPE tokenizers can be written as GGUF tokenizer keys" ${FLASHLM_BIN} run -m ${BAD_DIR}/hf_spm -p hi)
set_tests_properties(cli_error_convert_untied_without_lm_head cli_error_run_hf_spm_tokenizer PROPERTIES FIXTURES_REQUIRED bad_inputs)
flashlm_cli_error(info_missing_safetensors "cannot open '/nonexistent/x.safetensors'" ${FLASHLM_BIN} info -m /nonexistent/x.safetensors)
flashlm_cli_error(info_dir_without_weights "holds neither model.safetensors nor model.safetensors.index.json" ${FLASHLM_BIN} info -m ${CMAKE_SOURCE_DIR}/tests/golden/flash)
foreach(stem SmolLM2-135M-Instruct.Q4_1 gemma-3-270m-q4_k_m)
  add_test(NAME ppl_${stem} COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/check_ppl.py ${FLASHLM_BIN}
           ${CMAKE_SOURCE_DIR}/tests/golden/ppl/${stem}.json)
  set_tests_properties(ppl_${stem} PROPERTIES SKIP_RETURN_CODE 77 LABELS slow TIMEOUT 1200)
endforeach()
set_tests_properties(cli_run_smollm2_chat cli_run_gemma3_chat cli_tokenize_smollm2 cli_info_gemma3 PROPERTIES TIMEOUT 600)
# A seed makes sampling reproducible run to run.
add_test(NAME cli_run_seed_reproducible COMMAND bash -c
         "a=$($<TARGET_FILE:flashlm> run -m ${SMOLLM} -p 'Once upon a time' -n 16 --temp 1 -s 42 2>/dev/null) && b=$($<TARGET_FILE:flashlm> run -m ${SMOLLM} -p 'Once upon a time' -n 16 --temp 1 -s 42 2>/dev/null) && [ -n \"$a\" ] && [ \"$a\" = \"$b\" ]")
set_tests_properties(cli_run_seed_reproducible PROPERTIES LABELS slow)
# flashlm bench: a tiny pp/tg run whose JSON must hold a pp32 and a tg8 row with positive
# tokens/s (and a bandwidth share for tg only); bad flags give clear errors.
add_test(NAME cli_bench_smollm2 COMMAND bash -c
         "$<TARGET_FILE:flashlm> bench -m ${SMOLLM} -t 1 -p 32 -n 8 -r 1 -o json | python3 -c \"import json,sys; rows={r['test']: r for r in json.load(sys.stdin)}; assert set(rows) == {'pp32', 'tg8'}, rows; assert all(r['t_s'] > 0 and r['threads'] == 1 and len(r['samples']) == 1 for r in rows.values()), rows; assert rows['pp32']['bw_pct'] is None and rows['tg8']['bw_pct'] > 0, rows; print('bench ok')\"")
set_tests_properties(cli_bench_smollm2 PROPERTIES PASS_REGULAR_EXPRESSION "bench ok" LABELS slow TIMEOUT 600)
flashlm_cli_error(bench_bad_threads "threads.*'x'" ${FLASHLM_BIN} bench -m ${SMOLLM} -t 1,x)
flashlm_cli_error(bench_zero_threads "threads.*'0'" ${FLASHLM_BIN} bench -m ${SMOLLM} -t 0)
flashlm_cli_error(bench_bad_output "output" ${FLASHLM_BIN} bench -m ${SMOLLM} -o csv)
flashlm_cli_error(bench_prompt_over_ctx "exceeds the model's context" ${FLASHLM_BIN} bench -m ${SMOLLM} -p 100000)
# flashlm serve end to end (tests/server, pytest): the official openai client, SSE on the
# wire, bad requests, 200 concurrent streams with disconnects, SIGTERM drain, and the
# chat page in headless Chromium. Skipped (77) without the .venv that scripts/setup.sh makes.
if(NOT CMAKE_CROSSCOMPILING)  # the script runs the binary directly, not through qemu
  add_test(NAME server_pytest COMMAND ${CMAKE_SOURCE_DIR}/tests/server/run.sh $<TARGET_FILE:flashlm> ${SMOLLM})
  set_tests_properties(server_pytest PROPERTIES LABELS slow TIMEOUT 900 SKIP_RETURN_CODE 77)
endif()
# flashlm quantize and KL divergence (tests/check_quantize.py: gguf-py's quantizers and
# reader as the reference), and their bad inputs.
if(NOT CMAKE_CROSSCOMPILING)
  add_test(NAME cli_quantize_smollm2 COMMAND bash -c
           "py=${CMAKE_SOURCE_DIR}/.venv/bin/python; [ -x $py ] || { echo 'SKIPPED: needs the .venv of scripts/setup.sh'; exit 77; }; exec $py ${CMAKE_SOURCE_DIR}/tests/check_quantize.py $<TARGET_FILE:flashlm> ${SMOLLM} ${CMAKE_SOURCE_DIR}/data/eval.txt")
  set_tests_properties(cli_quantize_smollm2 PROPERTIES PASS_REGULAR_EXPRESSION "quantize ok" SKIP_RETURN_CODE 77
                       LABELS slow TIMEOUT 600)
endif()
# flashlm imatrix against llama-imatrix's files (tests/check_imatrix.py, gguf-py as the
# reader), quantize --imatrix's bad inputs.
if(NOT CMAKE_CROSSCOMPILING)
  add_test(NAME cli_imatrix_tiny_llama COMMAND bash -c
           "py=${CMAKE_SOURCE_DIR}/.venv/bin/python; [ -x $py ] || { echo 'SKIPPED: needs the .venv of scripts/setup.sh'; exit 77; }; exec $py ${CMAKE_SOURCE_DIR}/tests/check_imatrix.py $<TARGET_FILE:flashlm>")
  set_tests_properties(cli_imatrix_tiny_llama PROPERTIES PASS_REGULAR_EXPRESSION "imatrix ok" SKIP_RETURN_CODE 77 TIMEOUT 120)
endif()
set(GOLDEN_IMATRIX ${CMAKE_SOURCE_DIR}/tests/golden/quant/tiny-llama.imatrix.gguf)
flashlm_cli_error(quantize_imatrix_other_model "names no tensor of the model|another model" ${FLASHLM_BIN} quantize -m ${SMOLLM} -o ${BAD_DIR}/never.gguf --type Q4_0 --imatrix ${GOLDEN_IMATRIX})
flashlm_cli_error(quantize_imatrix_is_a_model "not an imatrix" ${FLASHLM_BIN} quantize -m ${SMOLLM} -o ${BAD_DIR}/never.gguf --type Q4_0 --imatrix ${SMOLLM})
flashlm_cli_error(quantize_imatrix_random_bytes "not an imatrix file|not a GGUF" ${FLASHLM_BIN} quantize -m ${SMOLLM} -o ${BAD_DIR}/never.gguf --type Q4_0 --imatrix ${BAD_DIR}/random.gguf)
flashlm_cli_error(quantize_imatrix_missing "cannot read imatrix" ${FLASHLM_BIN} quantize -m ${SMOLLM} -o ${BAD_DIR}/never.gguf --type Q4_0 --imatrix /nonexistent/imatrix.gguf)
flashlm_cli_error(imatrix_onto_model "is the model file" ${FLASHLM_BIN} imatrix -m ${SMOLLM} -f ${CMAKE_SOURCE_DIR}/tests/golden/quant/imatrix-text.txt -o ${SMOLLM})
flashlm_cli_error(imatrix_text_too_short "a chunk needs" ${FLASHLM_BIN} imatrix -m ${SMOLLM} -f ${CMAKE_SOURCE_DIR}/tests/golden/quant/imatrix-text.txt -c 4096 -o ${BAD_DIR}/never.imatrix)
flashlm_cli_error(imatrix_bad_format "output-format" ${FLASHLM_BIN} imatrix -m ${SMOLLM} -f x.txt --output-format csv)
set_tests_properties(cli_error_quantize_imatrix_random_bytes PROPERTIES FIXTURES_REQUIRED bad_inputs)
flashlm_cli_error(quantize_not_yet "type 'IQ4_XS' is not implemented yet" ${FLASHLM_BIN} quantize -m ${SMOLLM} -o ${BAD_DIR}/never.gguf --type IQ4_XS)
flashlm_cli_error(quantize_unknown_type "unknown type 'Q3_X'" ${FLASHLM_BIN} quantize -m ${SMOLLM} -o ${BAD_DIR}/never.gguf --type Q3_X)
flashlm_cli_error(quantize_onto_input "is the input file" ${FLASHLM_BIN} quantize -m ${SMOLLM} -o ${SMOLLM} --type Q8_0)
flashlm_cli_error(quantize_missing_file "cannot open" ${FLASHLM_BIN} quantize -m /nonexistent/model.gguf -o ${BAD_DIR}/never.gguf --type Q8_0)
flashlm_cli_error(quantize_random_bytes "not a GGUF file" ${FLASHLM_BIN} quantize -m ${BAD_DIR}/random.gguf -o ${BAD_DIR}/never.gguf --type Q8_0)
flashlm_cli_error(perplexity_kl_foreign_file "not a KL base file" ${FLASHLM_BIN} perplexity -m ${SMOLLM} -f ${CMAKE_SOURCE_DIR}/data/eval.txt --kl-base ${BAD_DIR}/random.gguf)
flashlm_cli_error(perplexity_kl_save_and_base "excludes" ${FLASHLM_BIN} perplexity -m ${SMOLLM} -f ${CMAKE_SOURCE_DIR}/data/eval.txt --kl-save a.kl --kl-base b.kl)
set_tests_properties(cli_error_quantize_random_bytes cli_error_perplexity_kl_foreign_file PROPERTIES FIXTURES_REQUIRED bad_inputs)
# flashlm eval: a few items of each built-in task on a real model (scripts/make_tasks.py
# makes data/tasks/ in the setup), and bad task files.
foreach(task kjv-next-verse kjv-last-word)
  add_test(NAME cli_eval_smollm2_${task} COMMAND ${FLASHLM_BIN} eval -m ${SMOLLM} --task ${CMAKE_SOURCE_DIR}/data/tasks/${task}.jsonl --limit 8 -t 2)
  set_tests_properties(cli_eval_smollm2_${task} PROPERTIES PASS_REGULAR_EXPRESSION "8 items.*acc = 0\\.[0-9]+ \\+/- .*acc_norm = " LABELS slow TIMEOUT 600)
endforeach()
flashlm_cli_error(eval_missing_task "cannot read task" ${FLASHLM_BIN} eval -m ${SMOLLM} --task no-such-task)
flashlm_cli_error(eval_bad_task "task line 1: malformed JSON" ${FLASHLM_BIN} eval -m ${SMOLLM} --task ${BAD_DIR}/random.gguf)
set_tests_properties(cli_error_eval_bad_task PROPERTIES FIXTURES_REQUIRED bad_inputs)
flashlm_cli_error(perplexity_kl_top_alone "kl-top requires --kl-save" ${FLASHLM_BIN} perplexity -m ${SMOLLM} -f ${CMAKE_SOURCE_DIR}/data/eval.txt --kl-top 64)
# flashlm prune: a small end-to-end prune of a synthetic model, and its bad inputs.
set(TINY_LLAMA ${CMAKE_SOURCE_DIR}/tests/golden/synthetic/tiny-llama-f32.gguf)
set(EVAL_TEXT ${CMAKE_SOURCE_DIR}/data/eval.txt)
add_test(NAME cli_prune_tiny_llama COMMAND ${FLASHLM_BIN} prune -m ${TINY_LLAMA} -o ${BAD_DIR}/pruned.gguf -f ${EVAL_TEXT}
         -c 64 --chunks 2 --ffn 64 --kv-groups 1 --heads-per-group 1 --drop-layers 1)
set_tests_properties(cli_prune_tiny_llama PROPERTIES FIXTURES_REQUIRED bad_inputs
                     PASS_REGULAR_EXPRESSION "FFN neurons per layer: 128 -> 64.*4 heads in 2 KV groups -> 1 heads in 1.*layers: 2 -> 1, dropped")
flashlm_cli_error(prune_nothing_asked "nothing to prune" ${FLASHLM_BIN} prune -m ${SMOLLM} -o ${BAD_DIR}/never.gguf -f ${EVAL_TEXT})
flashlm_cli_error(prune_onto_input "is the input file" ${FLASHLM_BIN} prune -m ${SMOLLM} -o ${SMOLLM} -f ${EVAL_TEXT} --ffn 512)
flashlm_cli_error(prune_zero_neurons "cannot keep 0 FFN neurons" ${FLASHLM_BIN} prune -m ${SMOLLM} -o ${BAD_DIR}/never.gguf -f ${EVAL_TEXT} --ffn 0)
flashlm_cli_error(prune_too_many_neurons "cannot keep 99999 FFN neurons" ${FLASHLM_BIN} prune -m ${SMOLLM} -o ${BAD_DIR}/never.gguf -f ${EVAL_TEXT} --ffn 99999)
flashlm_cli_error(prune_zero_fraction "--ffn-keep must be a fraction" ${FLASHLM_BIN} prune -m ${SMOLLM} -o ${BAD_DIR}/never.gguf -f ${EVAL_TEXT} --ffn-keep 0)
flashlm_cli_error(prune_zero_groups "cannot keep 0 KV groups" ${FLASHLM_BIN} prune -m ${SMOLLM} -o ${BAD_DIR}/never.gguf -f ${EVAL_TEXT} --kv-groups 0)
flashlm_cli_error(prune_zero_heads "cannot keep 0 query heads" ${FLASHLM_BIN} prune -m ${SMOLLM} -o ${BAD_DIR}/never.gguf -f ${EVAL_TEXT} --heads-per-group 0)
flashlm_cli_error(prune_too_many_heads "cannot keep 4 query heads per KV group: keep 1..3" ${FLASHLM_BIN} prune -m ${SMOLLM} -o ${BAD_DIR}/never.gguf -f ${EVAL_TEXT} --heads-per-group 4)
flashlm_cli_error(prune_all_layers "cannot drop 30 layers" ${FLASHLM_BIN} prune -m ${SMOLLM} -o ${BAD_DIR}/never.gguf -f ${EVAL_TEXT} --drop-layers 30)
flashlm_cli_error(prune_moe "pruning supports dense llama/gemma3/qwen models" ${FLASHLM_BIN} prune -m ${CMAKE_SOURCE_DIR}/tests/golden/synthetic/tiny-qwen3moe-f32.gguf -o ${BAD_DIR}/never.gguf -f ${EVAL_TEXT} --ffn 8)
flashlm_cli_error(prune_missing_model "cannot open" ${FLASHLM_BIN} prune -m /nonexistent/model.gguf -o ${BAD_DIR}/never.gguf -f ${EVAL_TEXT} --ffn 32)
flashlm_cli_error(prune_random_bytes "not a GGUF file" ${FLASHLM_BIN} prune -m ${BAD_DIR}/random.gguf -o ${BAD_DIR}/never.gguf -f ${EVAL_TEXT} --ffn 32)
flashlm_cli_error(prune_missing_text "cannot read" ${FLASHLM_BIN} prune -m ${TINY_LLAMA} -o ${BAD_DIR}/never.gguf -f /nonexistent/text.txt --ffn 64)
flashlm_cli_error(prune_empty_text "calibration text .* is empty" ${FLASHLM_BIN} prune -m ${TINY_LLAMA} -o ${BAD_DIR}/never.gguf -f /dev/null --ffn 64)
flashlm_cli_error(prune_text_too_short "a chunk needs" ${FLASHLM_BIN} prune -m ${TINY_LLAMA} -o ${BAD_DIR}/never.gguf -f ${CMAKE_SOURCE_DIR}/tests/golden/quant/imatrix-text.txt -c 65536 --ffn 64)
# A full disk mid-write (RLIMIT_FSIZE, as kv_store_test does): an error, nothing left behind.
add_test(NAME cli_error_prune_full_disk COMMAND bash -c
         "trap '' XFSZ; ulimit -f 64; ${EXPECT_ERROR} 'write failed' $<TARGET_FILE:flashlm> prune -m ${TINY_LLAMA} -o ${BAD_DIR}/full.gguf -f ${EVAL_TEXT} -c 64 --chunks 1 --ffn 64 && ! ls ${BAD_DIR}/full.gguf*")
set_tests_properties(cli_error_prune_random_bytes cli_error_prune_full_disk PROPERTIES FIXTURES_REQUIRED bad_inputs)
# flashlm flash: a recipe with every kind of step end to end on a synthetic model (the
# evaluation table beside the base's), a second run keeping every finished step, and a
# pipeline killed (SIGKILL, whole process group) mid-distillation that resumes: the steps
# before are kept, the distillation continues from its checkpoint.
add_test(NAME cli_flash_tiny_recipe COMMAND bash -c
         "set -e; cd ${CMAKE_SOURCE_DIR}; w=${BAD_DIR}/flash; rm -rf $w*; args='-m ${TINY_LLAMA} -o '$w.gguf' -f ${EVAL_TEXT} --eval-file ${EVAL_TEXT} \
          --recipe ${CMAKE_SOURCE_DIR}/tests/golden/flash/tiny.toml -t 2'; \
          ${FLASHLM_BIN} flash $args 2>$w.log || { cat $w.log; exit 1; }; \
          grep -q '| Flash .*04-quantize.gguf | 0.1 | [0-9.]* ([0-9.]*x) |' $w.log; grep -q 'flash: wrote' $w.log; test -s $w.gguf.work/05-evaluate.json; \
          ${FLASHLM_BIN} run -m $w.gguf -p 'the cat' -n 2 --temp 0 >/dev/null; \
          ${FLASHLM_BIN} flash $args 2>$w.log2; [ $(grep -c 'done, kept' $w.log2) -eq 5 ] || { cat $w.log2; exit 1; }")
set_tests_properties(cli_flash_tiny_recipe PROPERTIES FIXTURES_REQUIRED bad_inputs)
add_test(NAME cli_flash_resume_after_kill COMMAND bash -c
         "w=${BAD_DIR}/flash_kill; rm -rf $w*; args='-m ${TINY_LLAMA} -o '$w.gguf' -f ${EVAL_TEXT} \
          --recipe ${CMAKE_SOURCE_DIR}/tests/golden/flash/moefy.toml --budget-minutes 0.2 -t 1'; \
          setsid ${FLASHLM_BIN} flash $args >$w.log 2>&1 & pid=$!; \
          for i in $(seq 600); do [ -s $w.gguf.work/02-distill.gguf.ckpt ] && break; sleep 0.1; done; \
          kill -KILL -- -$pid; wait $pid; [ -s $w.gguf.work/02-distill.gguf.ckpt ] && [ ! -e $w.gguf ] || { echo 'not killed mid-distillation'; cat $w.log; exit 1; }; \
          ${FLASHLM_BIN} flash $args >$w.log2 2>&1 || { cat $w.log2; exit 1; }; \
          grep -q '01-moefy: done, kept' $w.log2 && grep -q 'resumed from step' $w.log2 && test -s $w.gguf || { cat $w.log2; exit 1; }")
set_tests_properties(cli_flash_resume_after_kill PROPERTIES FIXTURES_REQUIRED bad_inputs)
flashlm_cli_error(flash_unknown_recipe "neither a preset \\(balanced, memory, speed, ptq\\)" ${FLASHLM_BIN} flash -m ${TINY_LLAMA} -o ${BAD_DIR}/never.gguf -f ${EVAL_TEXT} --recipe fastest)
flashlm_cli_error(flash_no_eval_file "needs held-out text: --eval-file" ${FLASHLM_BIN} flash -m ${TINY_LLAMA} -o ${BAD_DIR}/never.gguf -f ${EVAL_TEXT} --recipe balanced)
flashlm_cli_error(flash_budget_unused "--budget-minutes is for distill steps without 'steps', and the recipe has none" ${FLASHLM_BIN} flash -m ${TINY_LLAMA} -o ${BAD_DIR}/never.gguf -f ${EVAL_TEXT} --eval-file ${EVAL_TEXT} --recipe ptq --budget-minutes 5)
flashlm_cli_error(flash_onto_input "is the input file" ${FLASHLM_BIN} flash -m ${TINY_LLAMA} -o ${TINY_LLAMA} -f ${EVAL_TEXT})
flashlm_cli_error(flash_missing_text "cannot read '/nonexistent/text.txt'" ${FLASHLM_BIN} flash -m ${TINY_LLAMA} -o ${BAD_DIR}/never.gguf -f /nonexistent/text.txt)
# flashlm finetune: a small end-to-end run on a synthetic model, ^C and --resume, bad inputs.
add_test(NAME cli_finetune_tiny_llama COMMAND ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/ft.gguf
         --ctx 32 --batch 2 --steps 4 --lr 1e-3 --valid-fraction 0.02 --checkpointing layer)
set_tests_properties(cli_finetune_tiny_llama PROPERTIES FIXTURES_REQUIRED bad_inputs
                     PASS_REGULAR_EXPRESSION "step 4/4 .*held-out loss [0-9.]+ -> [0-9.]+; wrote")
# ^C is sent once a step has run (the handler is in place then, whatever the machine's speed).
add_test(NAME cli_finetune_sigint_then_resume COMMAND bash -c
         "f=${BAD_DIR}/ft_int; rm -f $f.gguf*; args='-m ${TINY_LLAMA} -f ${EVAL_TEXT} -o '$f.gguf' --ctx 16 --steps 1000000 --valid-fraction 0.01'; \
          interrupt() { for i in $(seq 600); do grep -q 'step ' $f.log && break; sleep 0.1; done; kill -INT $1; wait $1; }; \
          ${FLASHLM_BIN} finetune $args 2>$f.log & interrupt $!; rc=$?; \
          [ $rc -eq 130 ] && grep -q 'stopped at step' $f.log && [ -f $f.gguf.ckpt ] || { echo rc=$rc; cat $f.log; exit 1; }; \
          ${FLASHLM_BIN} finetune $args --resume 2>$f.log & interrupt $!; rc=$?; \
          [ $rc -eq 130 ] && grep -q 'resumed from step' $f.log || { echo rc=$rc; cat $f.log; exit 1; }")
set_tests_properties(cli_finetune_sigint_then_resume PROPERTIES FIXTURES_REQUIRED bad_inputs)
# Snapshots every 2 of 5 steps (the model as it was at steps 2 and 4, each loadable) and
# the BF16 matmuls (emulated where the CPU has no AVX512_BF16).
add_test(NAME cli_finetune_snapshots_bf16 COMMAND bash -c
         "set -e; f=${BAD_DIR}/snap; rm -f $f*.gguf; ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o $f.gguf \
          --ctx 32 --batch 2 --steps 5 --lr 1e-3 --valid-fraction 0.02 --snapshot-every 2 --matmul bf16 --no-checkpoint 2>$f.log \
          || { cat $f.log; exit 1; }; grep -q -- '--matmul bf16' $f.log; ls $f.step2.gguf $f.step4.gguf $f.gguf; ! ls $f.step5.gguf; \
          for m in $f.step2.gguf $f.step4.gguf; do ${FLASHLM_BIN} run -m $m -p 'the cat' -n 2 --temp 0 >/dev/null; done; \
          ! cmp -s $f.step2.gguf $f.step4.gguf")
set_tests_properties(cli_finetune_snapshots_bf16 PROPERTIES FIXTURES_REQUIRED bad_inputs)
flashlm_cli_error(finetune_lora_snapshot_no_adapter "--snapshot-every with --train lora .* needs --lora-out" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf --train lora --snapshot-every 2)
flashlm_cli_error(finetune_bad_matmul "--matmul: f64 not in" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf --matmul f64)
flashlm_cli_error(finetune_missing_text "cannot read" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f /nonexistent/text.txt -o ${BAD_DIR}/never.gguf)
flashlm_cli_error(finetune_onto_input "is the input file" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${TINY_LLAMA})
flashlm_cli_error(finetune_no_out_dir "output directory .* does not exist" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o /nonexistent/dir/x.gguf)
flashlm_cli_error(finetune_bad_checkpointing "--checkpointing takes none, layer or every-N" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf --checkpointing every-0)
# LoRA: train adapters on a frozen base, write the adapter and the merged model; run with
# --lora gives the merged model's greedy tokens. Bad LoRA flags and files are refused.
add_test(NAME cli_finetune_lora_then_run COMMAND bash -c
         "set -e; f=${BAD_DIR}/lora; ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} --train lora --lora-rank 4 \
          --lora-out $f.gguf -o $f-merged.gguf --out-type f32 --ctx 32 --batch 2 --steps 4 --lr 1e-2 --valid-fraction 0.02 2>$f.log \
          || { cat $f.log; exit 1; }; grep -q \"wrote adapter '$f.gguf', merged model '$f-merged.gguf'\" $f.log; \
          a=$(${FLASHLM_BIN} run -m ${TINY_LLAMA} --lora $f.gguf -p 'the cat' -n 8 --temp 0 2>/dev/null); \
          b=$(${FLASHLM_BIN} run -m $f-merged.gguf -p 'the cat' -n 8 --temp 0 2>/dev/null); \
          c=$(${FLASHLM_BIN} run -m ${TINY_LLAMA} -p 'the cat' -n 8 --temp 0 2>/dev/null); \
          echo \"lora: $a | merged: $b | base: $c\"; [ \"$a\" = \"$b\" ]")
set_tests_properties(cli_finetune_lora_then_run PROPERTIES FIXTURES_REQUIRED bad_inputs)
add_test(NAME cli_run_smollm2_lora COMMAND ${FLASHLM_BIN} run -m ${SMOLLM} --lora ${CMAKE_SOURCE_DIR}/tests/golden/lora/SmolLM2-135M-Instruct.Q4_1.lora.gguf
         --lora-scaled ${CMAKE_SOURCE_DIR}/tests/golden/lora/SmolLM2-135M-Instruct.Q4_1.lora.gguf -0.5 -p "The capital of France is" -n 4 --temp 0)
flashlm_cli_error(finetune_lora_out_without_lora "need --train lora" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf --lora-out ${BAD_DIR}/never-lora.gguf)
flashlm_cli_error(finetune_lora_rank_without_lora "need --train lora" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf --lora-rank 4)
flashlm_cli_error(finetune_lora_no_output "--train lora needs --lora-out" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} --train lora)
flashlm_cli_error(finetune_lora_qat "with --train lora they are frozen" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} --train lora --lora-out ${BAD_DIR}/never-lora.gguf --qat Q4_0)
flashlm_cli_error(finetune_lora_bad_target "unknown LoRA target 'attn_z'" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} --train lora --lora-out ${BAD_DIR}/never-lora.gguf --lora-targets attn_q,attn_z)
flashlm_cli_error(run_lora_missing "LoRA adapter '/nonexistent/a.gguf'" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi --lora /nonexistent/a.gguf)
flashlm_cli_error(run_lora_not_adapter "is not a LoRA adapter" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi --lora ${TINY_LLAMA})
flashlm_cli_error(run_lora_other_model "is for architecture 'gemma3'" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi --lora ${CMAKE_SOURCE_DIR}/tests/golden/lora/tiny-gemma3-f32.lora.gguf)
flashlm_cli_error(run_lora_shape "pairs lora_a" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi --lora ${CMAKE_SOURCE_DIR}/tests/golden/lora/tiny-llama-f32.lora.gguf)
flashlm_cli_error(run_lora_bad_scale "is not a finite number" ${FLASHLM_BIN} run -m ${SMOLLM} -p hi --lora-scaled ${CMAKE_SOURCE_DIR}/tests/golden/lora/SmolLM2-135M-Instruct.Q4_1.lora.gguf abc)
flashlm_cli_error(finetune_router_dense "--train router: the model has no MoE layers" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf --train router)
flashlm_cli_error(finetune_router_unit_weights "no gradient reaches the routers" ${FLASHLM_BIN} finetune -m ${CMAKE_SOURCE_DIR}/tests/golden/synthetic/tiny-gemma3-moefied-f32.gguf -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf --train router)
flashlm_cli_error(finetune_text_too_short "one sequence needs" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${CMAKE_SOURCE_DIR}/tests/golden/quant/imatrix-text.txt -o ${BAD_DIR}/never.gguf --ctx 60000)
# MoE: the routers of a softmax top-k model, in Q4_0 (QAT keeps the routers F32).
add_test(NAME cli_finetune_moe_router_qat COMMAND ${FLASHLM_BIN} finetune -m ${CMAKE_SOURCE_DIR}/tests/golden/synthetic/tiny-qwen3moe-f32.gguf
         -f ${EVAL_TEXT} -o ${BAD_DIR}/ft_moe.gguf --ctx 32 --batch 2 --steps 3 --lr 1e-3 --valid-fraction 0.02 --train router --qat Q4_0)
set_tests_properties(cli_finetune_moe_router_qat PROPERTIES FIXTURES_REQUIRED bad_inputs
                     PASS_REGULAR_EXPRESSION "step 3/3 .*held-out loss [0-9.]+ -> [0-9.]+; wrote .* in Q4_0")
# flashlm distill (KL from a teacher run on the fly) with QAT, end to end on a synthetic
# model: the student is the teacher's file, so the held-out KL starts at Q4_0's damage.
add_test(NAME cli_distill_qat_tiny_llama COMMAND ${FLASHLM_BIN} distill --teacher ${TINY_LLAMA} -m ${TINY_LLAMA}
         -f ${EVAL_TEXT} -o ${BAD_DIR}/kd.gguf --ctx 32 --batch 2 --steps 4 --lr 1e-3 --valid-fraction 0.02
         --qat Q4_0 --temperature 2 --ce-weight 0.5 --kl-top 16)
set_tests_properties(cli_distill_qat_tiny_llama PROPERTIES FIXTURES_REQUIRED bad_inputs
                     PASS_REGULAR_EXPRESSION "step 4/4 .*held-out KL [0-9.]+ -> [0-9.]+; wrote .* in Q4_0")
flashlm_cli_error(distill_other_vocabulary "distillation needs one vocabulary" ${FLASHLM_BIN} distill --teacher ${SMOLLM} -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf)
flashlm_cli_error(distill_text_too_short "one sequence needs" ${FLASHLM_BIN} distill --teacher ${TINY_LLAMA} -m ${TINY_LLAMA} -f ${CMAKE_SOURCE_DIR}/tests/golden/quant/imatrix-text.txt -o ${BAD_DIR}/never.gguf --ctx 60000)
# A moefied student (Gemma 3 cut into experts) distilled from its dense parent.
add_test(NAME cli_distill_moefied_student COMMAND ${FLASHLM_BIN} distill --teacher ${CMAKE_SOURCE_DIR}/tests/golden/synthetic/tiny-gemma3-f32.gguf
         -m ${CMAKE_SOURCE_DIR}/tests/golden/synthetic/tiny-gemma3-moefied-f32.gguf -f ${EVAL_TEXT} -o ${BAD_DIR}/kd_moe.gguf
         --ctx 32 --batch 2 --steps 3 --lr 1e-3 --valid-fraction 0.02 --train experts)
set_tests_properties(cli_distill_moefied_student PROPERTIES FIXTURES_REQUIRED bad_inputs
                     PASS_REGULAR_EXPRESSION "step 3/3 .*held-out KL [0-9.]+ -> [0-9.]+; wrote")
flashlm_cli_error(finetune_qat_unknown_type "--qat: .*Q9_9" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf --qat Q9_9)
flashlm_cli_error(finetune_qat_with_out_type "excludes" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf --qat Q4_0 --out-type f16)
# Distillation from a stored teacher: perplexity --kl-save, then distill --teacher-logits
# over the same text (its chunks are the training sequences).
add_test(NAME cli_distill_stored_teacher COMMAND bash -c
         "${FLASHLM_BIN} perplexity -m ${TINY_LLAMA} -f ${EVAL_TEXT} -c 32 --chunks 12 --kl-save ${BAD_DIR}/tiny.kl --kl-top 16 2>/dev/null >/dev/null && \
          ${FLASHLM_BIN} distill --teacher-logits ${BAD_DIR}/tiny.kl -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/kd_stored.gguf --batch 2 --steps 3 --lr 1e-3 --valid-fraction 0.2 --qat Q8_0")
set_tests_properties(cli_distill_stored_teacher PROPERTIES FIXTURES_REQUIRED bad_inputs FIXTURES_SETUP stored_teacher
                     PASS_REGULAR_EXPRESSION "stored teacher .*step 3/3 .*held-out KL [0-9.]+ -> [0-9.]+; wrote .* in Q8_0")
flashlm_cli_error(distill_stored_other_text "differs from the stored teacher's" ${FLASHLM_BIN} distill --teacher-logits ${BAD_DIR}/tiny.kl -m ${TINY_LLAMA} -f ${CMAKE_SOURCE_DIR}/data/factory-calibration.txt -o ${BAD_DIR}/never.gguf)
flashlm_cli_error(distill_stored_temperature "temperature 1 only" ${FLASHLM_BIN} distill --teacher-logits ${BAD_DIR}/tiny.kl -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf --temperature 2)
flashlm_cli_error(distill_stored_ctx "excludes" ${FLASHLM_BIN} distill --teacher-logits ${BAD_DIR}/tiny.kl -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf --ctx 64)
flashlm_cli_error(distill_no_teacher "needs a teacher" ${FLASHLM_BIN} distill -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf)
flashlm_cli_error(distill_stored_damaged "not a GGUF file|kl|KL" ${FLASHLM_BIN} distill --teacher-logits ${BAD_DIR}/random.gguf -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf)
set_tests_properties(cli_error_distill_stored_other_text cli_error_distill_stored_temperature PROPERTIES FIXTURES_REQUIRED stored_teacher)
set_tests_properties(cli_error_distill_stored_damaged PROPERTIES FIXTURES_REQUIRED bad_inputs)
flashlm_cli_error(finetune_qat_same_unquantized "--qat same: .* holds no quantized weight matrix" ${FLASHLM_BIN} finetune -m ${TINY_LLAMA} -f ${EVAL_TEXT} -o ${BAD_DIR}/never.gguf --qat same)

# Embeddings (flashlm embed) from the all-MiniLM-L6-v2 model directory.
add_test(NAME cli_embed_minilm COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/check_embed.py ${FLASHLM_BIN} ${MINILM})
set_tests_properties(cli_embed_minilm PROPERTIES SKIP_RETURN_CODE 77)
# A Hugging Face directory's tokenizer.json (ids as Hugging Face tokenizers gives them).
add_test(NAME cli_tokenize_hf_dir COMMAND ${FLASHLM_BIN} tokenize -m ${MINILM} -p "Hello, world! [CLS] café")
set_tests_properties(cli_tokenize_hf_dir PROPERTIES PASS_REGULAR_EXPRESSION "^\\[101,7592,1010,2088,999,101,7668,102\\]")
# BPE tokenizer.json directories (setup makes them from our GGUFs with transformers):
# ids as Hugging Face tokenizers gives them. Gemma's 33 MB file is read once per string,
# too slow under the sanitizers: slow.
add_test(NAME cli_tokenize_hf_smollm2 COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/check_tokenize.py ${FLASHLM_BIN}
         ${CMAKE_SOURCE_DIR}/tests/golden/tokenizer/hf_smollm2.json ${CMAKE_SOURCE_DIR}/models/hf/SmolLM2-135M-Instruct)
add_test(NAME cli_tokenize_hf_gemma3 COMMAND python3 ${CMAKE_SOURCE_DIR}/tests/check_tokenize.py ${FLASHLM_BIN}
         ${CMAKE_SOURCE_DIR}/tests/golden/tokenizer/hf_gemma3.json ${CMAKE_SOURCE_DIR}/models/hf/gemma-3-270m)
set_tests_properties(cli_tokenize_hf_smollm2 cli_tokenize_hf_gemma3 PROPERTIES SKIP_RETURN_CODE 77)
set_tests_properties(cli_tokenize_hf_gemma3 PROPERTIES LABELS slow TIMEOUT 600)
flashlm_cli_error(embed_missing_model "cannot open" ${FLASHLM_BIN} embed -m /nonexistent/model.gguf -p hi)
flashlm_cli_error(embed_decoder_batch "--batch applies to encoder model directories" ${FLASHLM_BIN} embed -m ${SMOLLM} -p hi -b 4)
flashlm_cli_error(embed_decoder_bad_pooling "unknown pooling 'median'" ${FLASHLM_BIN} embed -m ${SMOLLM} -p hi --pooling median)
flashlm_cli_error(embed_encoder_kv_type "--kv-type applies to decoder" ${FLASHLM_BIN} embed -m ${MINILM} -p hi --kv-type f32)
flashlm_cli_error(embed_encoder_pooling "--pooling applies to decoder" ${FLASHLM_BIN} embed -m ${MINILM} -p hi --pooling last)
flashlm_cli_error(embed_nothing "nothing to embed" ${FLASHLM_BIN} embed -m ${MINILM})
flashlm_cli_error(embed_too_long_no_truncate "more than the 256 this model takes" ${FLASHLM_BIN} embed -m ${MINILM} --no-truncate
                  -p "${CMAKE_SOURCE_DIR} a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p q r s t u v w x y z")
flashlm_cli_error(serve_embedding_model_bad "--embedding-model" ${FLASHLM_BIN} serve -m ${SMOLLM} --port 0 --embedding-model ${CMAKE_SOURCE_DIR}/tests)
