// Package deploy holds no code: its tests check the deployment files next
// to it (compose.yaml, k8s/, grafana/) against the schemas of the tools
// that read them and against the broker's own flags.
package deploy
