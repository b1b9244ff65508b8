// flashlm command line: run | chat | tokenize | embed | perplexity | info | bench | serve | moefy | quantize | convert | eval | imatrix |
// prune | finetune | distill | flash.
#include <cstdio>

#include "cli/common.h"
#include "util/version.h"

int main(int argc, char** argv) {
  CLI::App app{"flashlm: fast inference for open LLMs (GGUF)", "flashlm"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("flashlm ") + flashlm::kVersion);
  int exit_code = 0;
  flashlm::cli::add_run(app, &exit_code);
  flashlm::cli::add_chat(app, &exit_code);
  flashlm::cli::add_tokenize(app, &exit_code);
  flashlm::cli::add_embed(app, &exit_code);
  flashlm::cli::add_perplexity(app, &exit_code);
  flashlm::cli::add_info(app, &exit_code);
  flashlm::cli::add_bench(app, &exit_code);
  flashlm::cli::add_serve(app, &exit_code);
  flashlm::cli::add_moefy(app, &exit_code);
  flashlm::cli::add_quantize(app, &exit_code);
  flashlm::cli::add_convert(app, &exit_code);
  flashlm::cli::add_eval(app, &exit_code);
  flashlm::cli::add_imatrix(app, &exit_code);
  flashlm::cli::add_prune(app, &exit_code);
  flashlm::cli::add_finetune(app, &exit_code);
  flashlm::cli::add_distill(app, &exit_code);
  flashlm::cli::add_flash(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);  // prints usage or the error; non-zero for errors
  }
  return exit_code;
}
