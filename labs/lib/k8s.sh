# Kubernetes scenarios: a workspace copy of the scenario's kustomization
# (the broken variant) that the learner edits, rendered and checked offline.

k8s_work() { echo "$STATE_DIR/work/$1"; }

# k8s_copy ID DEST: the scenario's k8s/ directory at DEST, with its
# "../../../../k8s/" references rewritten to reach the repository from DEST.
k8s_copy() {
    local id=$1 dest=$2 rel
    rm -rf "$dest"; mkdir -p "$dest"
    cp -R "$LABS_ROOT/scenarios/$id/k8s/." "$dest/"
    rel=$(realpath -m --relative-to="$dest" "$REPO_ROOT/k8s")
    find "$dest" -name '*.yaml' -exec sed -i "s#\.\./\.\./\.\./\.\./k8s/#$rel/#g" {} +
}

k8s_tools() {
    command -v kubectl >/dev/null 2>&1 || { K8S_WHY="kubectl is not installed (kustomize v5 needed)"; return 1; }
    command -v yq >/dev/null 2>&1 || /usr/bin/python3 -c 'import yaml' 2>/dev/null \
        || { K8S_WHY="neither yq nor python3-yaml is installed"; return 1; }
}

# k8s_render DIR OUT: rendered objects as JSON, one per line.
k8s_render() {
    local dir=$1 out=$2
    kubectl kustomize "$dir" >"$out.yaml" 2>"$out.err" || return 1
    if command -v yq >/dev/null 2>&1; then yq -c 'select(. != null)' "$out.yaml" >"$out"
    else /usr/bin/python3 -c 'import sys,yaml,json
for d in yaml.safe_load_all(open(sys.argv[1])):
    d is not None and print(json.dumps(d))' "$out.yaml" >"$out"; fi
}

k8s_start() {
    local id=$1 w; w=$(k8s_work "$id")
    k8s_copy "$id" "$w"
    say "Workspace with the manifests as they are in Git: $w"
    say "  render:   kubectl kustomize $w"
    say "  edit the patches there, then: labctl check $id   (or --target DIR for your own copy)"
    if [ $APPLY -eq 1 ]; then
        [ -n "$KCONTEXT" ] || die "--apply needs --context NAME (the cluster to break)"
        kubectl --context "$KCONTEXT" apply -k "$w" || die "kubectl apply failed" 1
        say "applied to context $KCONTEXT"
    fi
}

k8s_reset() { rm -rf "$(k8s_work "$1")"; }

# k8s_check ID: renders the target and runs the scenario's sc_check on it.
# Returns 3 (and says why) when the tools are missing.
k8s_check() {
    local id=$1 dir out
    dir=${TARGET:-$(k8s_work "$id")}
    if ! k8s_tools; then echo "# SKIP $id: $K8S_WHY" >&2; return 3; fi
    [ -d "$dir" ] || die "nothing to check at $dir (labctl start $id, or --target DIR)" 2
    out=$(mktemp); trap 'rm -f "$out" "$out.yaml" "$out.err"' RETURN
    if ! k8s_render "$dir" "$out"; then
        cond_fail "the manifests render with kustomize" "$(head -c 300 "$out.err")"
        return 0
    fi
    cond_ok "the manifests render with kustomize"
    K8S_JSON=$out
    sc_check
}

# kobj KIND NAME: the rendered object as JSON (empty if absent).
kobj() { jq -c --arg k "$1" --arg n "$2" 'select(.kind == $k and .metadata.name == $n)' "$K8S_JSON"; }
# kq JQ-FILTER: jq over all objects as one array.
kq() { jq -s -c "$1" "$K8S_JSON"; }
