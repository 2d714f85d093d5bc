import { strict as assert } from 'node:assert';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { AGENT_FLAGS, CONTROL_PLANE_FLAGS } from '../../../cli/commands/processes';
import { parseFlags } from '../../../cli/flags';
import { reviewAdmission } from '../../../control-plane/injection/injection-webhook';
import { WEBHOOK_PATH } from '../../../control-plane/injection/webhook-server';
import { parseHostPort } from '../../../src/util/address';
import { REPO_ROOT } from '../../helpers/processes';

// The manifests are read as plain YAML trees; these tests check how their parts refer to each other.
type K8s = any;

const DIR = path.join(REPO_ROOT, 'deploy', 'kubernetes');

function objects(file: string, dir = DIR): K8s[] {
  return parseAllDocuments(fs.readFileSync(path.join(dir, file), 'utf8')).map((d) => {
    assert.equal(d.errors.length, 0, `${file}: ${d.errors[0]?.message}`);
    return d.toJS();
  });
}

function find(kind: string, name: string, dir = DIR): K8s {
  for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    const hit = objects(file, dir).find((o) => o.kind === kind && o.metadata?.name === name);
    if (hit) return hit;
  }
  return assert.fail(`no ${kind} ${name} under ${path.relative(REPO_ROOT, dir)}`);
}

/** Container args as the kubelet expands them: $(VAR) from the given values. */
function expand(args: string[], vars: Record<string, string>): string[] {
  return args.map((a) => a.replace(/\$\(([A-Z_]+)\)/g, (_, v: string) => vars[v] ?? assert.fail(`no value for $(${v})`)));
}

describe('Kubernetes manifests (deploy/kubernetes)', () => {
  it('every object has an apiVersion, a kind and a name', () => {
    const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.yaml'));
    assert.ok(files.length >= 6);
    for (const file of files) {
      for (const o of objects(file)) {
        assert.ok(o.apiVersion && o.kind && o.metadata?.name, `${file}: ${JSON.stringify(o).slice(0, 80)}`);
      }
    }
  });

  it('the control plane starts from its ConfigMap, whose keys are its flags', () => {
    const deployment = find('Deployment', 'devicemesh-control-plane');
    const container = deployment.spec.template.spec.containers[0];
    const [command, flag, file] = container.args;
    assert.equal(command, 'control-plane');
    assert.equal(flag, '--config');
    const mount = container.volumeMounts.find((m: K8s) => m.mountPath === file);
    const volume = deployment.spec.template.spec.volumes.find((v: K8s) => v.name === mount.name);
    const configMap = find('ConfigMap', volume.configMap.name);
    const text = configMap.data[mount.subPath];
    const parsed = parseFlags('control-plane', container.args.slice(1), CONTROL_PLANE_FLAGS, {}, () => text);
    assert.equal(parsed.values['data-dir'], '/var/lib/devicemesh');
    // Every port the config listens on is a container port, and the data and certificate paths are mounted.
    const ports = new Set(container.ports.map((p: K8s) => p.containerPort));
    for (const key of ['listen', 'admin', 'webhook-listen']) assert.ok(ports.has(parseHostPort(parsed.values[key] as string).port), key);
    for (const key of ['data-dir', 'webhook-cert', 'webhook-key']) {
      const p = parsed.values[key] as string;
      assert.ok(container.volumeMounts.some((m: K8s) => p.startsWith(m.mountPath)), `${key} ${p} is not on a mounted volume`);
    }
  });

  it('the replicated control plane runs several replicas on etcd, from a config file its flags accept', () => {
    const dir = path.join(DIR, 'replicated');
    const deployment = find('Deployment', 'devicemesh-control-plane', dir);
    assert.ok(deployment.spec.replicas >= 2);
    const container = deployment.spec.template.spec.containers[0];
    const text = find('ConfigMap', 'devicemesh-control-plane', dir).data['control-plane.yaml'];
    const parsed = parseFlags('control-plane', container.args.slice(1), CONTROL_PLANE_FLAGS, {}, () => text);
    assert.ok((parsed.lists['etcd-endpoints'] ?? []).length > 0);
    // The same Service selects the replicas: its selector matches their labels.
    assert.deepEqual(find('Service', 'devicemesh-control-plane').spec.selector, deployment.spec.selector.matchLabels);
    assert.ok(!deployment.spec.template.spec.volumes.some((v: K8s) => v.persistentVolumeClaim), 'replicas keep no state of their own');
  });

  it('the webhook configuration reaches the control plane\'s webhook port and path', () => {
    const hook = find('MutatingWebhookConfiguration', 'devicemesh-sidecar-injector').webhooks[0];
    assert.deepEqual(hook.admissionReviewVersions, ['v1']);
    assert.equal(hook.clientConfig.service.path, WEBHOOK_PATH);
    const service = find('Service', hook.clientConfig.service.name);
    assert.equal(service.metadata.namespace, hook.clientConfig.service.namespace);
    const port = service.spec.ports.find((p: K8s) => p.port === hook.clientConfig.service.port);
    const container = find('Deployment', 'devicemesh-control-plane').spec.template.spec.containers[0];
    assert.ok(container.ports.some((p: K8s) => p.name === port.targetPort), 'the Service\'s webhook port targets no container port');
    assert.deepEqual(service.spec.selector, find('Deployment', 'devicemesh-control-plane').spec.selector.matchLabels);
  });

  it('the agent runs on gateway nodes with /dev mounted, and its args are valid agent flags', () => {
    const ds = find('DaemonSet', 'devicemesh-agent');
    const pod = ds.spec.template.spec;
    assert.deepEqual(pod.nodeSelector, { 'devicemesh.io/gateway': 'true' });
    const container = pod.containers[0];
    assert.ok(container.volumeMounts.some((m: K8s) => m.mountPath === '/dev'));
    assert.equal(pod.volumes.find((v: K8s) => v.name === 'dev').hostPath.path, '/dev');
    // The serial listing reads sysfs (agent/drivers/sysfs-serial-ports.ts), not the udev database.
    const sys = container.volumeMounts.find((m: K8s) => m.mountPath === '/sys');
    assert.equal(sys?.readOnly, true, '/sys is mounted read-only');
    assert.equal(pod.volumes.find((v: K8s) => v.name === sys.name).hostPath.path, '/sys');
    assert.ok(!container.volumeMounts.some((m: K8s) => m.mountPath.startsWith('/run/udev')), 'nothing reads /run/udev');
    const [command, ...args] = expand(container.args, { NODE_NAME: 'gw1', POD_IP: '10.1.2.3' });
    assert.equal(command, 'agent');
    const parsed = parseFlags('agent', args, AGENT_FLAGS, {});
    assert.equal(parsed.values['host-id'], 'gw1');
    assert.equal(parsed.values.advertise, '10.1.2.3:15020');
    assert.ok((parsed.lists.watch ?? []).includes('/dev/ttyUSB*'));
  });

  it('the example workload\'s pod template gets the sidecar from the webhook', () => {
    const deployment = find('Deployment', 'modem-reader');
    const config = parseFlags('control-plane', [], CONTROL_PLANE_FLAGS, {});
    const review = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: { uid: 'u-example', kind: { group: '', version: 'v1', kind: 'Pod' }, operation: 'CREATE', namespace: 'factory', object: { ...deployment.spec.template } },
    };
    const reply = reviewAdmission(JSON.stringify(review), {
      image: config.values['inject-image'] as string,
      controlPlane: config.values['inject-control-plane'] as string,
      caConfigMap: config.values['inject-ca-configmap'] as string,
    });
    assert.equal(reply.outcome, 'injected', reply.detail);
    const patch = JSON.parse(Buffer.from(reply.review.response.patch as string, 'base64').toString('utf8'));
    const sidecar = patch.find((op: K8s) => op.path === '/spec/containers/-').value;
    assert.equal(sidecar.args[2], 'modem-reader');
    // The Secret and ConfigMap the example ships are the ones the sidecar refers to.
    const secret = find('Secret', sidecar.env[0].valueFrom.secretKeyRef.name);
    assert.ok(secret.stringData[sidecar.env[0].valueFrom.secretKeyRef.key]);
    assert.ok(find('ConfigMap', config.values['inject-ca-configmap'] as string).data['ca.crt']);
    const binding = find('Binding', 'reader-modem');
    assert.equal(binding.spec.workload, 'modem-reader');
  });
});
