# libFuzzer targets (configure with CC=clang CXX=clang++ -DFLASHLM_FUZZ=ON; see
# fuzz/run_fuzzers.sh). Every layer is compiled with coverage instrumentation and
# ASan/UBSan so the fuzzer sees inside the code under test; UBSan findings abort so
# libFuzzer records them as crashes.
if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "FLASHLM_FUZZ needs clang (libFuzzer): configure with CC=clang CXX=clang++")
endif()

set(FLASHLM_FUZZ_FLAGS -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
    -fno-omit-frame-pointer -g)
foreach(layer ${FLASHLM_LAYERS})
  target_compile_options(flashlm_${layer} PRIVATE ${FLASHLM_FUZZ_FLAGS})
endforeach()

# fuzz_<name> from fuzz/fuzz_<name>.cpp, linked with the objects of the given layers and
# everything below them.
function(flashlm_fuzz_target name)
  set(objs "")
  foreach(layer ${ARGN})
    flashlm_objects(layer_objs ${layer})
    list(APPEND objs ${layer_objs})
  endforeach()
  list(REMOVE_DUPLICATES objs)
  add_executable(fuzz_${name} ${CMAKE_SOURCE_DIR}/fuzz/fuzz_${name}.cpp ${objs})
  foreach(layer ${ARGN})
    target_link_libraries(fuzz_${name} PRIVATE flashlm_${layer})
  endforeach()
  target_compile_options(fuzz_${name} PRIVATE ${FLASHLM_FUZZ_FLAGS})
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  set_target_properties(fuzz_${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
endfunction()

flashlm_fuzz_target(gguf models tokenizer)  # config, weight table and tokenizer too
flashlm_fuzz_target(chat_template chat)
flashlm_fuzz_target(request server)  # request bodies of the HTTP server
flashlm_fuzz_target(kv_store kv)  # block files of the persistent KV store
flashlm_fuzz_target(kl_base factory)  # KL base files (perplexity --kl-base)
flashlm_fuzz_target(imatrix factory)  # imatrix files, both forms (quantize --imatrix)
flashlm_fuzz_target(flash_recipe factory)  # Flash recipes (flashlm flash --recipe FILE)
flashlm_fuzz_target(safetensors formats)  # Hugging Face safetensors files
flashlm_fuzz_target(tokenizer_json tokenizer)  # Hugging Face tokenizer.json files, and text through WordPiece
flashlm_fuzz_target(grammar grammar)  # GBNF, JSON schemas and regexes, and matching against them
