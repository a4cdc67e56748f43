# /etc/profile.d/omserver-audit.sh — report every command of interactive bash
# sessions to OMServer's security audit. Each command becomes one small file in
# the spool's incoming/ folder (NUL-separated: time, login source, cwd,
# command); omserver-audit-ship numbers, spools and sends them. The file's
# owner, not its content, tells the shipper which user ran the command.
[ -n "${BASH_VERSION-}" ] || return 0
case $- in *i*) ;; *) return 0 ;; esac
[ -z "${__omserver_audit_loaded-}" ] || return 0
__omserver_audit_loaded=1
__omserver_audit_spool=${OMSERVER_AUDIT_SPOOL:-/var/spool/omserver-audit}
__omserver_audit_last=
# Every command counts, even repeated ones or ones starting with a space.
HISTCONTROL=
HISTIGNORE=

__omserver_audit() {
  local rc=$? line number cmd file
  line=$(HISTTIMEFORMAT= builtin history 1)
  if [[ $line =~ ^[[:space:]]*([0-9]+)[*]?[[:space:]]+(.*)$ ]]; then
    number=${BASH_REMATCH[1]} cmd=${BASH_REMATCH[2]}
    # The first prompt shows the last line of an older session's history: skip it.
    if [[ -n $__omserver_audit_last && $number != "$__omserver_audit_last" ]]; then
      file=$__omserver_audit_spool/incoming/.$$.$number.$RANDOM
      if printf '%s\0' "${EPOCHREALTIME:-$(date +%s)}" "${SSH_CONNECTION%% *}" "$PWD" "$cmd" \
        >"$file" 2>/dev/null; then
        command mv -f -- "$file" "${file%/.*}/${file##*/.}" 2>/dev/null
      fi
    fi
    __omserver_audit_last=$number
  else
    __omserver_audit_last=0
  fi
  return $rc
}
readonly -f __omserver_audit 2>/dev/null
PROMPT_COMMAND="__omserver_audit${PROMPT_COMMAND:+; $PROMPT_COMMAND}"
