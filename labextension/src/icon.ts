import { LabIcon } from '@jupyterlab/ui-components';

import mlopsSvg from '../style/icons/mlops.svg';

export const mlopsIcon = new LabIcon({ name: 'jupyter-mlops:icon', svgstr: mlopsSvg });
