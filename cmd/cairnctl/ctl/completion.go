package ctl

import (
	"strings"

	"github.com/spf13/cobra"
)

func (c *ctl) newCompletionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "completion [bash|zsh|fish|powershell]",
		Short: "Generate completion script",
		Long: strings.ReplaceAll(`To load completions:

Bash:

  $ source <(CLI completion bash)

  # To load completions for each session, execute once:
  # Linux:
  $ CLI completion bash > /etc/bash_completion.d/CLI
  # macOS:
  $ CLI completion bash > /usr/local/etc/bash_completion.d/CLI

Zsh:

  # If shell completion is not already enabled in your environment,
  # you will need to enable it.  You can execute the following once:

  $ echo "autoload -U compinit; compinit" >> ~/.zshrc

  # To load completions for each session, execute once:
  $ CLI completion zsh > "${fpath[1]}/_CLI"

  # You will need to start a new shell for this setup to take effect.

fish:

  $ CLI completion fish | source

  # To load completions for each session, execute once:
  $ CLI completion fish > ~/.config/fish/completions/CLI.fish

PowerShell:

  PS> CLI completion powershell | Out-String | Invoke-Expression

  # To load completions for every new session, run:
  PS> CLI completion powershell > CLI.ps1
  # and source this file from your PowerShell profile.
`, "CLI", cliName),
		DisableFlagsInUseLine: true,
		ValidArgs:             []string{"bash", "zsh", "fish", "powershell"},
		Args:                  cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs),
		GroupID:               groupUtility,
		Run: c.run(func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletion(c.stdout)
			case "zsh":
				return root.GenZshCompletion(c.stdout)
			case "fish":
				return root.GenFishCompletion(c.stdout, true)
			default:
				return root.GenPowerShellCompletionWithDesc(c.stdout)
			}
		}),
	}
}
