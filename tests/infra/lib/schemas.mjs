// Schema validation of rendered objects: kubernetes-models (+ @kubernetes-models/*)
// for Kubernetes, Istio, ArgoCD and Prometheus Operator kinds, made strict by
// strict.mjs; hand-written JSON Schemas (ajv, additionalProperties: false) for
// Flagger, Kyverno, Gatekeeper, External Secrets and SOPS files. A kind with
// no schema is an error, never a pass.
import { createRequire } from 'node:module';
import { prepare, strictErrors } from './strict.mjs';
const require = createRequire(import.meta.url);
const Ajv = require('ajv');

const core = (g, v, k) => `kubernetes-models/${g ? g + '/' : ''}${v}/${k}`;
export const MODELS = {
  'v1/ConfigMap': core('', 'v1', 'ConfigMap'), 'v1/Service': core('', 'v1', 'Service'), 'v1/ServiceAccount': core('', 'v1', 'ServiceAccount'),
  'v1/Namespace': core('', 'v1', 'Namespace'), 'v1/Secret': core('', 'v1', 'Secret'),
  'apps/v1/Deployment': core('apps', 'v1', 'Deployment'), 'apps/v1/StatefulSet': core('apps', 'v1', 'StatefulSet'),
  'autoscaling/v2/HorizontalPodAutoscaler': core('autoscaling', 'v2', 'HorizontalPodAutoscaler'),
  'policy/v1/PodDisruptionBudget': core('policy', 'v1', 'PodDisruptionBudget'),
  'networking.k8s.io/v1/NetworkPolicy': core('networking.k8s.io', 'v1', 'NetworkPolicy'),
  'networking.k8s.io/v1/Ingress': core('networking.k8s.io', 'v1', 'Ingress'),
  'scheduling.k8s.io/v1/PriorityClass': core('scheduling.k8s.io', 'v1', 'PriorityClass'),
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy': core('admissionregistration.k8s.io', 'v1', 'ValidatingAdmissionPolicy'),
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding': core('admissionregistration.k8s.io', 'v1', 'ValidatingAdmissionPolicyBinding'),
  'security.istio.io/v1beta1/PeerAuthentication': '@kubernetes-models/istio/security.istio.io/v1beta1/PeerAuthentication',
  'security.istio.io/v1beta1/AuthorizationPolicy': '@kubernetes-models/istio/security.istio.io/v1beta1/AuthorizationPolicy',
  'security.istio.io/v1beta1/RequestAuthentication': '@kubernetes-models/istio/security.istio.io/v1beta1/RequestAuthentication',
  'networking.istio.io/v1beta1/Gateway': '@kubernetes-models/istio/networking.istio.io/v1beta1/Gateway',
  'networking.istio.io/v1beta1/VirtualService': '@kubernetes-models/istio/networking.istio.io/v1beta1/VirtualService',
  'networking.istio.io/v1beta1/DestinationRule': '@kubernetes-models/istio/networking.istio.io/v1beta1/DestinationRule',
  'argoproj.io/v1alpha1/Application': '@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application',
  'argoproj.io/v1alpha1/AppProject': '@kubernetes-models/argo-cd/argoproj.io/v1alpha1/AppProject',
  'monitoring.coreos.com/v1/ServiceMonitor': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor',
  'monitoring.coreos.com/v1/PodMonitor': '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor',
};

// ---- hand-written schemas ----
const S = { type: 'string', minLength: 1 }, B = { type: 'boolean' }, I = { type: 'integer' }, N = { type: 'number' };
const arr = items => ({ type: 'array', items });
const map = v => ({ type: 'object', additionalProperties: v });
const obj = (properties, required = [], extra = {}) => ({ type: 'object', additionalProperties: false, properties, required, ...extra });
const dur = { type: 'string', pattern: '^[0-9]+(ms|s|m|h)$' };
const meta = obj({ name: S, namespace: S, labels: map({ type: 'string' }), annotations: map({ type: 'string' }), finalizers: arr(S) }, ['name']);
const top = (apiVersion, kind, spec, specRequired = true, more = {}) => obj({ apiVersion: { const: apiVersion }, kind: { const: kind }, metadata: meta, spec, ...more },
  ['apiVersion', 'kind', 'metadata', ...(specRequired ? ['spec'] : [])]);
const selector = obj({ matchLabels: map({ type: 'string' }), matchExpressions: arr(obj({ key: S, operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist'] }, values: arr(S) }, ['key', 'operator'])) });
const customMeta = obj({ labels: map({ type: 'string' }), annotations: map({ type: 'string' }) });
const ref = (kinds) => obj({ apiVersion: S, kind: { enum: kinds }, name: S }, ['apiVersion', 'kind', 'name']);
// Flagger v1beta1 (subset of the CRD we use; anything else is an error).
const trafficPolicy = { type: 'object' }; // an Istio TrafficPolicy: checked through the DestinationRule model below
const canary = top('flagger.app/v1beta1', 'Canary', obj({
  provider: S, targetRef: ref(['Deployment', 'DaemonSet']), autoscalerRef: ref(['HorizontalPodAutoscaler']),
  progressDeadlineSeconds: I, revertOnDeletion: B, skipAnalysis: B, suspend: B,
  service: obj({ name: S, port: I, targetPort: { type: ['integer', 'string'] }, portName: S, portDiscovery: B, appProtocol: S, timeout: dur,
    gateways: arr(S), hosts: arr(S), trafficPolicy, retries: obj({ attempts: I, perTryTimeout: dur, retryOn: S }),
    apex: customMeta, primary: customMeta, canary: customMeta, match: arr({ type: 'object' }), rewrite: { type: 'object' }, headers: { type: 'object' }, corsPolicy: { type: 'object' } }, ['port']),
  analysis: obj({ interval: dur, threshold: { type: 'integer', minimum: 1 }, maxWeight: { type: 'integer', minimum: 1, maximum: 100 }, stepWeight: { type: 'integer', minimum: 1, maximum: 100 },
    stepWeights: arr(I), iterations: I, mirror: B, primaryReadyThreshold: I, canaryReadyThreshold: I,
    metrics: arr(obj({ name: S, interval: dur, thresholdRange: obj({ min: N, max: N }), templateRef: obj({ name: S, namespace: S }, ['name']), templateVariables: map({ type: 'string' }) }, ['name'])),
    webhooks: arr(obj({ name: S, type: { enum: ['confirm-rollout', 'pre-rollout', 'rollout', 'confirm-traffic-increase', 'confirm-promotion', 'post-rollout', 'rollback', 'event'] },
      url: { type: 'string', pattern: '^https?://' }, timeout: dur, muteAlert: B, metadata: map({ type: 'string' }) }, ['name', 'url'])) }, ['interval', 'threshold', 'metrics']),
}, ['targetRef', 'service', 'analysis']));
const metricTemplate = top('flagger.app/v1beta1', 'MetricTemplate', obj({
  provider: obj({ type: { enum: ['prometheus', 'datadog', 'cloudwatch', 'newrelic', 'graphite', 'influxdb', 'dynatrace', 'keptn', 'splunk'] }, address: { type: 'string', pattern: '^https?://' }, secretRef: obj({ name: S }), insecureSkipVerify: B }, ['type']),
  query: S }, ['provider', 'query']));
// Kyverno kyverno.io/v1 ClusterPolicy (subset).
const kmatch = obj({ any: arr(obj({ resources: obj({ kinds: arr(S), names: arr(S), namespaces: arr(S), namespaceSelector: selector, selector, operations: arr(S) }, ['kinds']) })), all: arr({ type: 'object' }) });
const failureAction = { enum: ['Audit', 'Enforce'] };
const celExprs = obj({ expressions: arr(obj({ expression: S, message: S, messageExpression: S, reason: S }, ['expression'])), variables: arr(obj({ name: S, expression: S }, ['name', 'expression'])) }, ['expressions']);
const clusterPolicy = top('kyverno.io/v1', 'ClusterPolicy', obj({
  background: B, admission: B, validationFailureAction: failureAction, webhookConfiguration: obj({ failurePolicy: { enum: ['Fail', 'Ignore'] }, timeoutSeconds: I }),
  rules: arr(obj({ name: S, match: kmatch, exclude: kmatch,
    validate: obj({ failureAction, message: S, cel: celExprs }, ['cel']),
    verifyImages: arr(obj({ imageReferences: arr(S), failureAction, mutateDigest: B, verifyDigest: B, required: B,
      attestors: arr(obj({ count: I, entries: arr(obj({ keyless: obj({ issuer: S, subject: S, subjectRegExp: S, rekor: obj({ url: S }, ['url']) }, ['issuer']) })) })) }, ['imageReferences', 'attestors'])) },
    ['name', 'match'], { oneOf: [{ required: ['validate'] }, { required: ['verifyImages'] }] })) }, ['rules']));
// Gatekeeper templates.gatekeeper.sh/v1 ConstraintTemplate, K8sNativeValidation only.
const constraintTemplate = top('templates.gatekeeper.sh/v1', 'ConstraintTemplate', obj({
  crd: obj({ spec: obj({ names: obj({ kind: { type: 'string', pattern: '^K8s[A-Za-z]+$' } }, ['kind']), validation: obj({ openAPIV3Schema: { type: 'object' } }) }, ['names']) }, ['spec']),
  targets: arr(obj({ target: { const: 'admission.k8s.gatekeeper.sh' }, code: arr(obj({ engine: { const: 'K8sNativeValidation' }, source: obj({
    validations: arr(obj({ expression: S, message: S, messageExpression: S }, ['expression'])), variables: arr(obj({ name: S, expression: S }, ['name', 'expression'])) }, ['validations']) }, ['engine', 'source'])), rego: S }, ['target', 'code'])) }, ['crd', 'targets']));
const constraint = kind => top('constraints.gatekeeper.sh/v1beta1', kind, obj({
  enforcementAction: { enum: ['deny', 'dryrun', 'warn'] }, parameters: { type: 'object' },
  match: obj({ kinds: arr(obj({ apiGroups: arr({ type: 'string' }), kinds: arr(S) }, ['apiGroups', 'kinds'])), namespaces: arr(S), namespaceSelector: selector, labelSelector: selector }, ['kinds']) }, ['match']));
// External Secrets external-secrets.io/v1beta1.
const externalSecret = top('external-secrets.io/v1beta1', 'ExternalSecret', obj({
  refreshInterval: dur, secretStoreRef: obj({ kind: { enum: ['SecretStore', 'ClusterSecretStore'] }, name: S }, ['name']),
  target: obj({ name: S, creationPolicy: { enum: ['Owner', 'Orphan', 'Merge', 'None'] }, deletionPolicy: S }),
  data: arr(obj({ secretKey: S, remoteRef: obj({ key: S, property: S, version: S }, ['key']) }, ['secretKey', 'remoteRef'])),
  dataFrom: arr(obj({ extract: obj({ key: S, property: S, version: S }, ['key']) })) }, ['secretStoreRef'], { anyOf: [{ required: ['data'] }, { required: ['dataFrom'] }] }));
const clusterSecretStore = top('external-secrets.io/v1beta1', 'ClusterSecretStore', obj({
  provider: obj({ aws: obj({ service: { enum: ['SecretsManager', 'ParameterStore'] }, region: { type: 'string', pattern: '^[a-z]{2}-[a-z]+-[0-9]$' }, role: S,
    auth: obj({ jwt: obj({ serviceAccountRef: obj({ name: S, namespace: S }, ['name']) }, ['serviceAccountRef']) }) }, ['service', 'region']) }, ['aws']) }, ['provider']));
// Karpenter v1 NodePool / EC2NodeClass (subset we use).
const req = obj({ key: S, operator: { enum: ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'] }, values: arr({ type: 'string' }), minValues: I }, ['key', 'operator']);
const nodePool = top('karpenter.sh/v1', 'NodePool', obj({
  template: obj({ metadata: customMeta, spec: obj({ nodeClassRef: obj({ group: S, kind: S, name: S }, ['group', 'kind', 'name']), requirements: arr(req),
    taints: arr(obj({ key: S, value: S, effect: { enum: ['NoSchedule', 'PreferNoSchedule', 'NoExecute'] } }, ['key', 'effect'])), expireAfter: S, terminationGracePeriod: S }, ['nodeClassRef', 'requirements']) }, ['spec']),
  limits: obj({ cpu: { type: ['string', 'integer'] }, memory: S }), weight: I,
  disruption: obj({ consolidationPolicy: { enum: ['WhenEmpty', 'WhenEmptyOrUnderutilized'] }, consolidateAfter: S, budgets: arr({ type: 'object' }) }) }, ['template']));
const tagTerms = arr(obj({ tags: map({ type: 'string' }), id: S }));
const ec2NodeClass = top('karpenter.k8s.aws/v1', 'EC2NodeClass', obj({
  role: S, instanceProfile: S, amiSelectorTerms: arr(obj({ alias: { type: 'string', pattern: '^(al2023|al2|bottlerocket)@(v[0-9]+|latest)$' }, id: S, tags: map({ type: 'string' }) })),
  subnetSelectorTerms: tagTerms, securityGroupSelectorTerms: tagTerms, tags: map({ type: 'string' }),
  metadataOptions: obj({ httpEndpoint: S, httpProtocolIPv6: S, httpTokens: { enum: ['required', 'optional'] }, httpPutResponseHopLimit: I }),
  blockDeviceMappings: arr(obj({ deviceName: S, rootVolume: B, ebs: obj({ volumeSize: S, volumeType: S, encrypted: B, kmsKeyID: S, iops: I, throughput: I, deleteOnTermination: B }) })) },
  ['amiSelectorTerms', 'subnetSelectorTerms', 'securityGroupSelectorTerms']));
// SOPS-encrypted YAML: the sops metadata block (KMS key, MAC) ...
const enc = { type: 'string', pattern: '^ENC\\[AES256_GCM,data:[A-Za-z0-9+/=]*,iv:[A-Za-z0-9+/=]+,tag:[A-Za-z0-9+/=]+,type:(str|int|float|bool|bytes)\\]$' };
export const SOPS_SCHEMA = { type: 'object', required: ['sops'], properties: {
  sops: obj({ kms: arr(obj({ arn: { type: 'string', pattern: '^arn:aws:kms:[a-z0-9-]+:[0-9]{12}:(key|alias)/.+' }, created_at: S, enc: S, aws_profile: { type: 'string' }, role: { type: 'string' } }, ['arn', 'enc'])),
    age: arr({ type: 'object' }), pgp: arr({ type: 'object' }), hc_vault: arr({ type: 'object' }), gcp_kms: arr({ type: 'object' }), azure_kv: arr({ type: 'object' }),
    lastmodified: S, mac: enc, version: S, encrypted_regex: S, encrypted_suffix: S, unencrypted_suffix: S, unencrypted_regex: S, mac_only_encrypted: B }, ['kms', 'lastmodified', 'mac', 'version']) },
  $defs: { encrypted: { anyOf: [enc, { type: 'array', items: { $ref: '#/$defs/encrypted' } }, { type: 'object', additionalProperties: { $ref: '#/$defs/encrypted' } }] } } };

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
const AJV = {
  'flagger.app/v1beta1/Canary': ajv.compile(canary), 'flagger.app/v1beta1/MetricTemplate': ajv.compile(metricTemplate),
  'kyverno.io/v1/ClusterPolicy': ajv.compile(clusterPolicy), 'templates.gatekeeper.sh/v1/ConstraintTemplate': ajv.compile(constraintTemplate),
  'constraints.gatekeeper.sh/v1beta1/K8sGuaranteedQoS': ajv.compile(constraint('K8sGuaranteedQoS')),
  'constraints.gatekeeper.sh/v1beta1/K8sNoPlaintextSecret': ajv.compile(constraint('K8sNoPlaintextSecret')),
  'karpenter.sh/v1/NodePool': ajv.compile(nodePool), 'karpenter.k8s.aws/v1/EC2NodeClass': ajv.compile(ec2NodeClass),
  'external-secrets.io/v1beta1/ExternalSecret': ajv.compile(externalSecret), 'external-secrets.io/v1beta1/ClusterSecretStore': ajv.compile(clusterSecretStore),
};
export const validateSops = ajv.compile(SOPS_SCHEMA);
// Every value under a key that sops encrypts (encrypted_regex, default: all) must be ciphertext.
export const validateEncrypted = ajv.compile({ $ref: '#/$defs/encrypted', $defs: SOPS_SCHEMA.$defs });
const ajvErrs = v => (v.errors || []).map(e => `${e.instancePath || '/'} ${e.message}${e.params?.additionalProperty ? ` '${e.params.additionalProperty}'` : ''}`);

let prepared = false;
const classCache = new Map();
function model(spec) {
  if (!classCache.has(spec)) { const m = require(spec); classCache.set(spec, Object.values(m).find(x => typeof x === 'function')); }
  return classCache.get(spec);
}

// -> list of error strings for one object (empty = valid).
export function validateObject(o) {
  if (!prepared) { prepare([...new Set(Object.values(MODELS))]); prepared = true; }
  const key = `${o?.apiVersion}/${o?.kind}`;
  if (MODELS[key]) {
    const spec = MODELS[key], errs = [];
    try { new (model(spec))(structuredClone(o)).validate(); }
    catch (e) { errs.push(...(e.errors ? e.errors.map(x => `${x.instancePath || '/'} ${x.message}`) : [e.message])); }
    errs.push(...strictErrors(o, spec, spec.split('/').pop()));
    if (key === 'flagger.app/v1beta1/Canary') {}
    return errs;
  }
  if (AJV[key]) {
    const errs = AJV[key](o) ? [] : ajvErrs(AJV[key]);
    if (key === 'flagger.app/v1beta1/Canary' && o.spec?.service?.trafficPolicy) {
      // A Canary's trafficPolicy becomes the generated DestinationRules' one: validate it as such.
      errs.push(...validateObject({ apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name: 'x' }, spec: { host: 'x', trafficPolicy: o.spec.service.trafficPolicy } })
        .map(e => `spec.service.trafficPolicy (as DestinationRule): ${e}`));
    }
    return errs;
  }
  return [`no schema for ${key} (add one to tests/infra/lib/schemas.mjs)`];
}
